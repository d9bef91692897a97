package devserver

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/metrotest"
)

// goModule writes a small module: a main package importing a local one.
func goModule(t *testing.T, mainSrc string) string {
	t.Helper()
	return writeProject(t, map[string]string{
		"go.mod":            "module example.com/m\n\ngo 1.22\n",
		"cmd/app/main.go":   mainSrc,
		"lib/lib.go":        "package lib\n\nfunc Name() string { return \"lib\" }\n",
		"unused/unused.go":  "package unused\n",
		"cmd/app/README.md": "not Go",
	})
}

const okMain = `package main

import (
	"fmt"

	"example.com/m/lib"
)

func main() { fmt.Println(lib.Name()) }
`

func TestGoBuild(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("the go command is needed to build workers")
	}
	tests := []struct {
		name    string
		src     string
		cancel  bool
		wantErr string // "" for success
	}{
		{"builds", okMain, false, ""},
		{"compile error", "package main\n\nfunc main() {\n\tundefinedThing()\n}\n", false, "undefined: undefinedThing"},
		{"cancelled", okMain, true, "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := goModule(t, tt.src)
			out := filepath.Join(dir, ".metro", "bin", "app")
			ctx, cancel := context.WithCancel(t.Context())
			if tt.cancel {
				cancel()
			}
			err := goBuild(ctx, "app", filepath.Join(dir, "cmd", "app"), ".", out)
			cancel()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				b, err := exec.Command(out).Output()
				if err != nil || string(b) != "lib\n" {
					t.Fatalf("built binary said %q, %v", b, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to hold %q", err, tt.wantErr)
			}
			var be *BuildError
			if tt.cancel != !errors.As(err, &be) {
				t.Errorf("BuildError = %v for %v", be != nil, err)
			}
		})
	}
}

// TestGoBuildCancelKillsCompiler: cancelling a running build ends it and
// every process it started.
func TestGoBuildCancelKillsCompiler(t *testing.T) {
	dir := goModule(t, okMain)
	// A cold, private build cache makes the build long enough to cancel
	// midway (it compiles fmt and the runtime), and marks its processes:
	// they all inherit this variable.
	cache := "GOCACHE=" + t.TempDir()
	t.Setenv("GOCACHE", strings.TrimPrefix(cache, "GOCACHE="))
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- goBuild(ctx, "app", filepath.Join(dir, "cmd", "app"), ".", filepath.Join(dir, "app")) }()
	metrotest.WaitFor(t, "the build's processes", time.Minute, func() bool { return len(processesWithEnv(cache)) > 1 })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the build did not stop")
	}
	// SIGKILL is delivered asynchronously: allow the dying a moment.
	metrotest.WaitFor(t, "every build process to be gone", 10*time.Second, func() bool { return len(processesWithEnv(cache)) == 0 })
	if _, err := os.Stat(filepath.Join(dir, "app")); err == nil {
		t.Error("a cancelled build left a binary")
	}
}

// processesWithEnv lists the live processes whose environment holds kv.
func processesWithEnv(kv string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !alive(pid) {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		if slices.Contains(strings.Split(string(b), "\x00"), kv) {
			out = append(out, pid)
		}
	}
	return out
}

func TestLocalDeps(t *testing.T) {
	dir := goModule(t, okMain)
	root, dirs, err := localDeps(t.Context(), filepath.Join(dir, "cmd", "app"), ".")
	if err != nil {
		t.Fatal(err)
	}
	if root != dir {
		t.Errorf("module root = %q, want %q", root, dir)
	}
	want := []string{filepath.Join(dir, "cmd", "app"), filepath.Join(dir, "lib")}
	slices.Sort(dirs)
	slices.Sort(want)
	if !slices.Equal(dirs, want) {
		t.Errorf("dirs = %v, want %v (the module's packages only, not unused/ nor the standard library)", dirs, want)
	}
}
