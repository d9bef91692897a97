package deploy

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeKubectl puts a shell script named kubectl alone on PATH: a real
// child process that sees what Apply sends it.
func fakeKubectl(t *testing.T, script string) (dir string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kubectl"), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	t.Setenv("OUT", dir)
	return dir
}

func shopManifests(t *testing.T) []Manifest {
	t.Helper()
	ms, err := Render(load(t, "testdata/shop"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestApplyWithoutKubectl(t *testing.T) {
	t.Setenv("PATH", "")
	err := Apply(context.Background(), shopManifests(t), &bytes.Buffer{}, &bytes.Buffer{})
	if !errors.Is(err, ErrNoKubectl) {
		t.Fatalf("err = %v, want ErrNoKubectl", err)
	}
	if !strings.Contains(err.Error(), "kubectl not found") || !strings.Contains(err.Error(), "--emit-yaml") {
		t.Errorf("message %q should say what is missing and the way out", err)
	}
}

func TestApply(t *testing.T) {
	ms := shopManifests(t)
	tests := []struct {
		name    string
		script  string
		wantErr error
		wantMsg string
	}{
		{"applied", `echo "$@" > "$OUT/args"; /bin/cat > "$OUT/stdin"; echo "deployment.apps/shop-gateway serverside-applied"`, nil, ""},
		{"no cluster", `/bin/cat > /dev/null; echo 'The connection to the server localhost:8080 was refused - did you specify the right host or port?' >&2; echo 'error: Unable to connect to the server: dial tcp 127.0.0.1:8080: connect: connection refused' >&2; exit 1`, ErrNoCluster, "Unable to connect to the server"},
		{"rejected", `/bin/cat > /dev/null; echo 'Error from server (Forbidden): deployments.apps is forbidden' >&2; exit 1`, nil, "kubectl apply: exit status 1: Error from server (Forbidden)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := fakeKubectl(t, tt.script)
			var stdout, stderr bytes.Buffer
			err := Apply(context.Background(), ms, &stdout, &stderr)
			if tt.wantErr == nil && tt.wantMsg == "" {
				if err != nil {
					t.Fatal(err)
				}
				args, _ := os.ReadFile(filepath.Join(dir, "args"))
				if got := strings.TrimSpace(string(args)); got != "apply --server-side --field-manager=metro -f -" {
					t.Errorf("kubectl args %q", got)
				}
				stdin, _ := os.ReadFile(filepath.Join(dir, "stdin"))
				if !bytes.Equal(stdin, YAML(ms)) {
					t.Error("kubectl did not get the manifests on stdin")
				}
				if !strings.Contains(stdout.String(), "serverside-applied") {
					t.Errorf("kubectl's output not passed on: %q", stdout.String())
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err %q does not contain %q", err, tt.wantMsg)
			}
			if stderr.Len() == 0 {
				t.Error("kubectl's stderr not passed on")
			}
		})
	}
}

// Cancelling stops kubectl and whatever it started, and Apply returns.
func TestApplyCancel(t *testing.T) {
	dir := fakeKubectl(t, `/bin/sleep 300 & echo $! > "$OUT/child"; wait`)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Apply(ctx, shopManifests(t), &bytes.Buffer{}, &bytes.Buffer{}) }()

	childFile := filepath.Join(dir, "child")
	var pid int
	for deadline := time.Now().Add(10 * time.Second); pid == 0; {
		if b, err := os.ReadFile(childFile); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if time.Now().After(deadline) {
			t.Fatal("fake kubectl did not start its child")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Apply after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Apply did not return after cancel")
	}
	for deadline := time.Now().Add(10 * time.Second); alive(pid); {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("kubectl's child %d survived the cancel", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid runs (a zombie awaiting its reaper does not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
