package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/devstate"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natsconn"
	"github.com/metropolis-dev/metro/internal/natstest"
)

// buildCallBinary builds this command into dir.
func buildCallBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "metro")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// callWorker runs an SDK worker on url until the test ends.
func callWorker(t *testing.T, url, name string, routes map[string]http.HandlerFunc, opts ...metro.Option) {
	t.Helper()
	opts = append([]metro.Option{metro.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	metrotest.StartWorker(t, url, name, metrotest.Routes(routes), opts...)
}

// callEnv is the test's environment without anything that points metro
// call at a NATS server, plus extra.
func callEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "NATS_URL=") || strings.HasPrefix(kv, "METRO_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// TestCallCommand runs the real binary, built once, against SDK workers
// on a real NATS server.
func TestCallCommand(t *testing.T) {
	bin := buildCallBinary(t, t.TempDir())
	s := natstest.Run(t)
	url := s.ClientURL()
	release := make(chan struct{})
	callWorker(t, url, "things", map[string]http.HandlerFunc{
		"GET /x": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "hello x\n")
		},
		"POST /echo": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
			io.Copy(w, r.Body)
		},
		"GET /boom": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		},
		"GET /gone": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "gone", http.StatusNotFound)
		},
		"GET /slow": func(w http.ResponseWriter, r *http.Request) { <-release },
	})
	callWorker(t, url, "dev-things", map[string]http.HandlerFunc{
		"GET /x": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello from dev\n") },
	}, metro.WithPrefix("dev"))
	t.Cleanup(func() { close(release) }) // before the workers stop

	// A project with a running metro dev (its state file), and a directory
	// with nothing: neither the flag, nor NATS_URL, nor a state file.
	project := t.TempDir()
	if err := devstate.Write(project, devstate.State{NATSURL: url, Prefix: "dev", PID: os.Getpid()}); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(project, "orders", "handlers")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()

	for _, tt := range []struct {
		name       string
		args       []string
		env        []string
		stdin      string
		dir        string // default: empty
		wantCode   int
		wantOut    string // exact stdout, unless "*"
		wantErr    string // substring of the one stderr line; "" means no stderr
		wantErrEnd string // exact stderr, when set
	}{
		{
			name:     "include",
			args:     []string{"call", "GET", "/x", "--server", url, "-i", "-H", "X-Request-Id: e2e-1"},
			wantCode: 0,
			wantOut:  "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nX-Request-Id: e2e-1\r\n\r\nhello x\n",
		},
		{
			name:     "body only",
			args:     []string{"call", "GET", "/x", "--server", url},
			wantCode: 0,
			wantOut:  "hello x\n",
		},
		{
			name:     "data and header",
			args:     []string{"call", "post", "/echo", "--server", url, "-d", `{"n":1}`, "-H", "Content-Type: application/json", "-i", "-H", "X-Request-Id: e2e-2"},
			wantCode: 0,
			wantOut:  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Id: e2e-2\r\n\r\n{\"n\":1}",
		},
		{
			name:     "data from stdin",
			args:     []string{"call", "POST", "/echo", "--server", url, "-d", "@-"},
			stdin:    "line one\nline two\n",
			wantCode: 0,
			wantOut:  "line one\nline two\n",
		},
		{
			name:     "4xx is an answer",
			args:     []string{"call", "GET", "/gone", "--server", url},
			wantCode: 0,
			wantOut:  "gone\n",
		},
		{
			name:       "5xx fails",
			args:       []string{"call", "GET", "/boom", "--server", url},
			wantCode:   1,
			wantOut:    "boom\n",
			wantErrEnd: "metro: GET /boom: status 500\n",
		},
		{
			name:       "5xx message names the method as sent",
			args:       []string{"call", "get", "/boom", "--server", url},
			wantCode:   1,
			wantOut:    "boom\n",
			wantErrEnd: "metro: GET /boom: status 500\n",
		},
		{
			name:     "no responders",
			args:     []string{"call", "GET", "/nobody/home", "--server", url},
			wantCode: 1,
			wantOut:  "*",
			wantErr:  "status 503",
		},
		{
			name:     "timeout",
			args:     []string{"call", "GET", "/slow", "--server", url, "--timeout", "200ms"},
			wantCode: 1,
			wantOut:  "*",
			wantErr:  "status 504",
		},
		{
			name:     "bad header",
			args:     []string{"call", "GET", "/x", "--server", url, "-H", "no colon here"},
			wantCode: 2,
			wantErr:  "no colon here",
		},
		{
			name:     "bad header, no server anywhere",
			args:     []string{"call", "GET", "/x", "-H", "no colon here"},
			wantCode: 2,
			wantErr:  "no colon here",
		},
		{
			name:     "relative path",
			args:     []string{"call", "GET", "x", "--server", url},
			wantCode: 2,
			wantErr:  "must start with /",
		},
		{
			name:     "missing path",
			args:     []string{"call", "GET"},
			wantCode: 2,
			wantErr:  "arg",
		},
		{
			name:     "unknown flag",
			args:     []string{"call", "GET", "/x", "--bogus"},
			wantCode: 2,
			wantErr:  "bogus",
		},
		{
			name:       "no server anywhere",
			args:       []string{"call", "GET", "/x"},
			wantCode:   1,
			wantErrEnd: "metro: " + natsconn.ErrNoServer.Error() + "\n",
		},
		{
			name:     "server not there",
			args:     []string{"call", "GET", "/x", "--server", "nats://127.0.0.1:1"},
			wantCode: 1,
			wantErr:  "connecting to NATS at nats://127.0.0.1:1",
		},
		{
			name:     "NATS_URL",
			args:     []string{"call", "GET", "/x"},
			env:      []string{"NATS_URL=" + url},
			wantCode: 0,
			wantOut:  "hello x\n",
		},
		{
			name:     "metro dev state and its prefix",
			args:     []string{"call", "GET", "/x"},
			dir:      sub,
			wantCode: 0,
			wantOut:  "hello from dev\n",
		},
		{
			name:     "METRO_PREFIX",
			args:     []string{"call", "GET", "/x"},
			env:      []string{"NATS_URL=" + url, "METRO_PREFIX=dev"},
			wantCode: 0,
			wantOut:  "hello from dev\n",
		},
		{
			name:     "METRO_PREFIX over the dev prefix",
			args:     []string{"call", "GET", "/x"},
			env:      []string{"METRO_PREFIX="},
			dir:      sub,
			wantCode: 0,
			wantOut:  "hello x\n",
		},
		{
			name:     "--prefix over METRO_PREFIX",
			args:     []string{"call", "GET", "/x", "--prefix", "dev"},
			env:      []string{"NATS_URL=" + url, "METRO_PREFIX=elsewhere"},
			wantCode: 0,
			wantOut:  "hello from dev\n",
		},
		{
			name:     "--prefix over the dev prefix",
			args:     []string{"call", "GET", "/x", "--prefix", ""},
			dir:      sub,
			wantCode: 0,
			wantOut:  "hello x\n",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dir
			if dir == "" {
				dir = empty
			}
			code, stdout, stderr := runCallBinary(t, bin, dir, callEnv(tt.env...), tt.stdin, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.wantCode, stderr)
			}
			if tt.wantOut != "*" && stdout != tt.wantOut {
				t.Errorf("stdout %q, want %q", stdout, tt.wantOut)
			}
			switch {
			case tt.wantErrEnd != "":
				if stderr != tt.wantErrEnd {
					t.Errorf("stderr %q, want %q", stderr, tt.wantErrEnd)
				}
			case tt.wantErr == "":
				if stderr != "" {
					t.Errorf("stderr %q, want none", stderr)
				}
			default:
				if !strings.HasPrefix(stderr, "metro: ") || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
					t.Errorf("stderr %q is not one line starting with \"metro: \"", stderr)
				}
				if !strings.Contains(stderr, tt.wantErr) {
					t.Errorf("stderr %q does not contain %q", stderr, tt.wantErr)
				}
			}
		})
	}
}

// runCallBinary runs bin in its own process group, killed with the group
// if the test ends first, and returns its exit code and output.
func runCallBinary(t *testing.T, bin, dir string, env []string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env, cmd.Stdin = dir, env, strings.NewReader(stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		code = ee.ExitCode()
	default:
		t.Fatalf("running metro %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errOut.String()
}
