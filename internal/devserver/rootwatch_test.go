package devserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWatcherFollowsRootAway: a worker's directory renamed away and back,
// or deleted and recreated (as git checkout does), is watched again once
// it is back: edits after that are changes. Its leaving and coming back
// are reported.
func TestWatcherFollowsRootAway(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		away func(t *testing.T, root string)
		back func(t *testing.T, root string)
	}{
		{"renamed and back",
			func(t *testing.T, root string) { rename(t, root, root+".moved") },
			func(t *testing.T, root string) { rename(t, root+".moved", root) }},
		{"deleted and recreated",
			func(t *testing.T, root string) {
				if err := os.RemoveAll(root); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, root string) {
				mkdir(t, filepath.Join(root, "sub"))
				writeFile(t, filepath.Join(root, "main.go"), "v2")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := filepath.Join(t.TempDir(), "worker")
			mkdir(t, filepath.Join(root, "sub"))
			writeFile(t, filepath.Join(root, "main.go"), "v1")
			w, err := newWatcher(watchSet{tree: root})
			if err != nil {
				t.Fatal(err)
			}
			reports := make(chan string, 10)
			w.onMissing = func(dir string, gone bool) {
				if dir != root {
					t.Errorf("report for %s, want %s", dir, root)
				}
				reports <- map[bool]string{true: "gone", false: "back"}[gone]
			}
			out := runWatcher(t, w, 20*time.Millisecond)

			tt.away(t, root)
			expectReport(t, reports, "gone")
			tt.back(t, root)
			expectReport(t, reports, "back")
			for _, f := range []string{"main.go", "sub/x.go"} {
				editNoticed(t, out, filepath.Join(root, f))
			}
		})
	}
}

func expectReport(t *testing.T, reports <-chan string, want string) {
	t.Helper()
	select {
	case got := <-reports:
		if got != want {
			t.Fatalf("reported %s, want %s", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no report %q", want)
	}
}

// editNoticed edits p until a change notice dated after an edit comes.
// One edit may fall in the burst of coming back, whose notice is dated
// earlier; the next one, once that burst is over, must bring its own.
func editNoticed(t *testing.T, out <-chan time.Time, p string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for i := 0; ; i++ {
		before := time.Now()
		writeFile(t, p, fmt.Sprint("edit ", i))
		retry := time.After(time.Second)
	wait:
		for {
			select {
			case at := <-out:
				if !at.Before(before) {
					return
				}
			case <-retry:
				break wait
			case <-deadline:
				t.Fatalf("no change notice for edits of %s", p)
			}
		}
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBuildSaysDirectoryIsMissing: building a worker whose directory is
// gone says so, instead of go's "fork/exec ...: no such file".
func TestBuildSaysDirectoryIsMissing(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	r := &runner{spec: workerSpec{name: "catalog", project: project,
		pkg: filepath.Join(project, "workers", "catalog"), bin: filepath.Join(project, ".metro", "bin", "catalog")}}
	r.state.Store("")
	_, err := r.build(context.Background())
	if err == nil || !strings.Contains(err.Error(), "directory workers/catalog is missing") || strings.Contains(err.Error(), "fork/exec") {
		t.Errorf("build: %v", err)
	}
}

// TestDevWorkerDirAwayAndBack: metro dev says when a worker's directory
// is renamed away, keeps the running version, and reloads on edits once
// the directory is back, also after a delete and recreate.
func TestDevWorkerDirAwayAndBack(t *testing.T) {
	t.Parallel()
	dir := writeProject(t, map[string]string{
		"metro.yaml": `name: away
gateway:
  listen: "127.0.0.1:0"
  admin: ""
nats:
  port: 0
workers:
  sleepy:
    run: echo "up $(cat value.txt)"; exec sleep 1000
    dir: ./w
    watch: ["*.txt"]
`,
		"w/value.txt": "one",
	})
	w := filepath.Join(dir, "w")
	d := startDev(t, dir, "DEVSERVER_TEST_GRACE=2s", "DEVSERVER_TEST_READY=200ms")
	d.waitOutput(t, "| up one", time.Minute)

	rename(t, w, w+".x")
	d.waitOutput(t, "sleepy: w is gone (renamed or deleted)", 10*time.Second)
	rename(t, w+".x", w)
	d.waitOutput(t, "sleepy: w is back", 10*time.Second)
	writeFile(t, filepath.Join(w, "value.txt"), "two")
	d.waitOutput(t, "| up two", 30*time.Second)

	if err := os.RemoveAll(w); err != nil {
		t.Fatal(err)
	}
	mkdir(t, w)
	writeFile(t, filepath.Join(w, "value.txt"), "three")
	d.waitOutput(t, "| up three", 30*time.Second)
	writeFile(t, filepath.Join(w, "value.txt"), "four")
	d.waitOutput(t, "| up four", 30*time.Second)
	if strings.Contains(d.out.String(), "no such file") {
		t.Errorf("output mentions a missing file rather than the directory:\n%s", d.out.String())
	}
	if code := d.interrupt(t, 30*time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
}
