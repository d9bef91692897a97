package devserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/devserver/devtest"
	"github.com/metropolis-dev/metro/internal/devstate"
	"github.com/metropolis-dev/metro/internal/metrotest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The end-to-end tests run metro dev as a real process: the test binary
// itself, re-executed with this variable set, behaves like `metro dev`
// (signals, output, exit code) without building the whole CLI.
const envMain = "DEVSERVER_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envMain) == "1" {
		os.Exit(devMain())
	}
	flag.Parse()
	os.Exit(m.Run())
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func devMain() int {
	ctx, stop := signalContext()
	defer stop()
	grace, _ := time.ParseDuration(os.Getenv("DEVSERVER_TEST_GRACE"))
	ready, _ := time.ParseDuration(os.Getenv("DEVSERVER_TEST_READY"))
	o := Options{Dir: ".", Out: os.Stderr, Grace: grace, ReadyTimeout: ready}
	if p := os.Getenv("DEVSERVER_TEST_NATS_PORT"); p != "" {
		n, _ := strconv.Atoi(p)
		o.NATSPort = &n
	}
	if err := Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "metro: "+err.Error())
		return 1
	}
	return 0
}

// devRun is one metro dev process under test.
type devRun struct {
	dir  string
	cmd  *exec.Cmd
	out  *metrotest.LockedBuffer
	done chan struct{}
	err  error
}

// startDev runs metro dev in dir until the test ends.
func startDev(t *testing.T, dir string, env ...string) *devRun {
	t.Helper()
	d := &devRun{dir: dir, out: &metrotest.LockedBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(os.Args[0], "-test.run=^$")
	d.cmd.Dir = dir
	d.cmd.Env = append(append(os.Environ(), envMain+"=1", "NO_COLOR=1"), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	// Its own group, like a shell job: signals reach it only from the test.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting metro dev: %v", err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
			return
		default:
		}
		d.cmd.Process.Signal(syscall.SIGINT) //nolint:errcheck
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
			d.cmd.Process.Kill() //nolint:errcheck
			<-d.done
		}
		if t.Failed() {
			t.Logf("metro dev output:\n%s", d.out.String())
		}
	})
	return d
}

// waitOutput waits until the output holds s.
func (d *devRun) waitOutput(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	metrotest.WaitFor(t, fmt.Sprintf("output %q\noutput so far:\n%s", s, d.out.String()), timeout, func() bool {
		select {
		case <-d.done:
			t.Fatalf("metro dev exited (%v) while waiting for %q:\n%s", d.err, s, d.out.String())
		default:
		}
		return strings.Contains(d.out.String(), s)
	})
}

// waitCount waits until the output holds s n times.
func (d *devRun) waitCount(t *testing.T, s string, n int, timeout time.Duration) {
	t.Helper()
	metrotest.WaitFor(t, fmt.Sprintf("%d times %q\noutput so far:\n%s", n, s, d.out.String()), timeout, func() bool {
		return strings.Count(d.out.String(), s) >= n
	})
}

// state waits for .metro/dev.json and returns it.
func (d *devRun) state(t *testing.T, timeout time.Duration) devstate.State {
	t.Helper()
	var st devstate.State
	metrotest.WaitFor(t, "dev.json\n"+d.out.String(), timeout, func() bool {
		b, err := os.ReadFile(filepath.Join(d.dir, devstate.RelPath))
		return err == nil && json.Unmarshal(b, &st) == nil
	})
	return st
}

// interrupt sends SIGINT and waits for the exit.
func (d *devRun) interrupt(t *testing.T, timeout time.Duration) (exitCode int) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("SIGINT: %v", err)
	}
	select {
	case <-d.done:
	case <-time.After(timeout):
		t.Fatalf("metro dev still running %s after SIGINT:\n%s", timeout, d.out.String())
	}
	return d.cmd.ProcessState.ExitCode()
}

// copyProject copies a project of this repository into a temporary
// directory (see devtest.CopyProject for why this builds offline).
func copyProject(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if _, err := devtest.CopyProject(src, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// writeProject writes files (path -> content) into a new temporary directory.
func writeProject(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// get returns the status and body of GET url.
func get(ctx context.Context, c *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// alive reports whether pid is a live process (a zombie is not: it has
// exited and merely waits for a parent that may never come, e.g. when
// PID 1 of a container does not reap).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no /proc: trust kill
	}
	return procState(b) != 'Z'
}

// procState reads the state field of /proc/PID/stat, after the command
// name in parentheses (which may itself hold spaces and parentheses).
func procState(stat []byte) byte {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0
	}
	return stat[i+2]
}

// groupMembers lists the live processes whose process group is pgid.
func groupMembers(pgid int) []int {
	members, _ := liveGroupMembers(pgid)
	return members
}
