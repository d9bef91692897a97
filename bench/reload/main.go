// Command reload measures how long metro dev takes to serve an edit: it
// runs metro dev on a temporary copy of examples/shop, edits a catalog
// handler n times, and times each from saving the file to the first
// request answered by the new code (the build cache is warm after the
// first start). It prints JSON on stdout:
//
//	{"reload_median_ms": 812, "samples_ms": [790, 812, 840, 799, 901]}
//
// Progress and metro dev's own output go to stderr (with -v).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/metropolis-dev/metro/internal/devserver/devtest"
	"github.com/metropolis-dev/metro/internal/devstate"
)

// Result is what the benchmark prints.
type Result struct {
	MedianMS  float64   `json:"reload_median_ms"`
	SamplesMS []float64 `json:"samples_ms"`
}

func main() {
	n := flag.Int("n", 5, "number of edits to time")
	example := flag.String("example", "examples/shop", "project to copy, relative to the repository root")
	verbose := flag.Bool("v", false, "show metro dev's output on stderr")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	res, err := run(ctx, log, *n, *example, *verbose)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reload:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "reload:", err)
		os.Exit(1)
	}
}

// The handler the benchmark edits and the request that shows the edit.
const (
	handlerFile = "catalog/catalog.go"
	original    = `"Apple"`
	path        = "/products/apple"
)

func run(ctx context.Context, log *slog.Logger, n int, example string, verbose bool) (Result, error) {
	root, err := devtest.RepoRoot(".")
	if err != nil {
		return Result{}, err
	}
	tmp, err := os.MkdirTemp("", "metro-reload-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "project")
	if _, err := devtest.CopyProject(filepath.Join(root, example), dir); err != nil {
		return Result{}, err
	}
	bin := filepath.Join(tmp, "metro")
	log.Info("building metro")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/metro")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return Result{}, fmt.Errorf("building metro: %w", err)
	}

	dev := exec.Command(bin, "dev", "--listen", "127.0.0.1:0", "--nats-port", "0")
	dev.Dir = dir
	dev.Env = append(os.Environ(), "METRO_ADMIN=127.0.0.1:0", "NO_COLOR=1")
	dev.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := dev.StderrPipe()
	if err != nil {
		return Result{}, err
	}
	if err := dev.Start(); err != nil {
		return Result{}, fmt.Errorf("starting metro dev: %w", err)
	}
	reloads := make(chan string, 64)
	var wg sync.WaitGroup
	wg.Go(func() { scanOutput(stderr, reloads, verbose) })
	defer func() {
		// metro dev stops its workers and exits on SIGINT.
		dev.Process.Signal(syscall.SIGINT) //nolint:errcheck
		done := make(chan struct{})
		go func() { dev.Wait(); close(done) }() //nolint:errcheck
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-dev.Process.Pid, syscall.SIGKILL) //nolint:errcheck
			<-done
		}
		wg.Wait()
	}()

	log.Info("waiting for metro dev", "dir", dir)
	st, err := waitState(ctx, dir, 3*time.Minute)
	if err != nil {
		return Result{}, err
	}
	url := st.GatewayURL + path
	client := &http.Client{Timeout: 5 * time.Second}
	if _, err := waitName(ctx, client, url, "Apple", 30*time.Second); err != nil {
		return Result{}, err
	}

	file := filepath.Join(dir, handlerFile)
	src, err := os.ReadFile(file)
	if err != nil {
		return Result{}, err
	}
	var samples []float64
	for i := 1; i <= n; i++ {
		want := fmt.Sprintf("Apple v%d", i)
		edited := strings.Replace(string(src), original, `"`+want+`"`, 1)
		saved := time.Now()
		if err := os.WriteFile(file, []byte(edited), 0o644); err != nil {
			return Result{}, err
		}
		if _, err := waitName(ctx, client, url, want, 2*time.Minute); err != nil {
			return Result{}, err
		}
		took := time.Since(saved)
		ms := float64(took.Microseconds()) / 1000
		samples = append(samples, ms)
		log.Info("reload", "edit", i, "ms", ms)
		// Let metro dev finish the swap (all replicas, old ones retired)
		// before the next edit.
		if err := waitReload(ctx, reloads, 2*time.Minute); err != nil {
			return Result{}, err
		}
	}
	return Result{MedianMS: median(samples), SamplesMS: samples}, nil
}

// scanOutput forwards metro dev's lines and reports its reloads.
func scanOutput(r io.Reader, reloads chan<- string, verbose bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if verbose {
			fmt.Fprintln(os.Stderr, line)
		}
		if strings.Contains(line, "| reloaded catalog in ") {
			select {
			case reloads <- line:
			default:
			}
		}
	}
}

func waitReload(ctx context.Context, reloads <-chan string, limit time.Duration) error {
	select {
	case <-reloads:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(limit):
		return errors.New("metro dev did not report the reload")
	}
}

func waitState(ctx context.Context, dir string, limit time.Duration) (devstate.State, error) {
	deadline := time.Now().Add(limit)
	for {
		b, err := os.ReadFile(filepath.Join(dir, devstate.RelPath))
		var st devstate.State
		if err == nil && json.Unmarshal(b, &st) == nil {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, errors.New("metro dev did not get ready (no .metro/dev.json)")
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitName polls url as fast as answers come until the product's name is
// want, and returns how long that took.
func waitName(ctx context.Context, c *http.Client, url, want string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(limit)
	for {
		if name, err := productName(ctx, c, url); err == nil && name == want {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s never answered %q", url, want)
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func productName(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var p struct {
		Name string `json:"name"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return "", err
	}
	return p.Name, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
