package tui

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/metropolis-dev/metro/internal/natstest"
)

// TestCLIErrors runs the real binary on misuse and on a missing server:
// exit 2 and exit 1, each with one clear line on stderr and nothing on
// stdout.
func TestCLIErrors(t *testing.T) {
	bin := buildMetro(t)
	tests := []struct {
		name string
		args []string
		env  []string
		code int
		want string
	}{
		{"bad subject", []string{"tap", "users..x", "--server", "nats://127.0.0.1:1"}, nil, 2, `cannot tap "users..x": empty token`},
		{"bad route", []string{"tap", "GET /users/{id", "--server", "nats://127.0.0.1:1"}, nil, 2, "cannot tap"},
		{"bad buffer", []string{"tap", "--buffer", "0"}, nil, 2, "--buffer must be at least 1"},
		{"unknown flag", []string{"tap", "--nope"}, nil, 2, "unknown flag"},
		{"no server anywhere", []string{"tap"}, []string{"NATS_URL="}, 1, "no NATS server to tap"},
		{"server down", []string{"tap", "--server", "nats://127.0.0.1:1"}, nil, 1, "connecting to NATS at nats://127.0.0.1:1 (from --server)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Dir = t.TempDir() // no .metro/dev.json here or above
			cmd.Env = append(cmd.Environ(), tt.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tt.code {
				t.Fatalf("exit %v, want %d; stderr %q", err, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
				t.Errorf("stderr %q, want one line with %q", stderr.String(), tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}

// TestCLIStops: --timeout and an interrupt each end an NDJSON run
// cleanly (exit 0), with what was seen written out.
func TestCLIStops(t *testing.T) {
	bin := buildMetro(t)
	s := natstest.Run(t)
	client := natstest.Connect(t, s)
	tests := []struct {
		name      string
		args      []string
		interrupt bool
	}{
		{"timeout", []string{"--timeout", "500ms"}, false},
		{"interrupt", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"tap", "--server", s.ClientURL()}, tt.args...)...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				if strings.Contains(sc.Text(), "tapping") {
					break // subscribed
				}
			}
			// Not a metro subject: tapping everything ignores it, so
			// nothing but a clean exit is expected on stdout.
			_ = client.Publish("not-metro", nil)
			_ = client.Flush()
			if tt.interrupt {
				_ = cmd.Process.Signal(os.Interrupt)
			}
			// The rest of stderr is read to its end before Wait closes it.
			if _, err := io.Copy(io.Discard, stderr); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("metro tap: %v", err)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}
