package devserver

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWatcher drives a real fsnotify watcher over a temporary tree: each
// case changes one file and says whether it counts as a change. A change
// that counts must bring a notice through fsnotify; for one that must
// not, the watcher's own decision is asked, since the absence of a
// notice could only be shown by waiting for a while.
func TestWatcher(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		globs []string
		file  string // relative to the root; "dep/" is a flat dependency dir
		want  bool
	}{
		{"source file", nil, "main.go", true},
		{"file in a subdirectory", nil, "internal/x/x.go", true},
		{"file in a directory created after the start", nil, "fresh/new.go", true},
		{"editor swap file", nil, ".main.go.swp", false},
		{"backup file", nil, "main.go~", false},
		{"go test file", nil, "main_test.go", false},
		{"hidden directory", nil, ".git/index", false},
		{"node_modules", nil, "node_modules/x/index.js", false},
		{"imported package", nil, "dep/dep.go", true},
		{"below an imported package (another package)", nil, "dep/sub/sub.go", false},
		{"go.mod", nil, "mod/go.mod", true},
		{"other file beside go.mod", nil, "mod/README", false},
		{"glob matches", []string{"**/*.js"}, "lib/a.js", true},
		{"glob does not match", []string{"**/*.js"}, "lib/a.ts", false},
		{"beside the root, in its parent", nil, "../sibling.go", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "root")
			for _, d := range []string{"internal/x", ".git", "node_modules/x", "lib"} {
				mkdir(t, filepath.Join(root, d))
			}
			mkdir(t, filepath.Join(base, "dep", "sub"))
			mkdir(t, filepath.Join(base, "mod"))
			w, err := newWatcher(watchSet{
				tree:  root,
				globs: tt.globs,
				dirs:  []string{filepath.Join(base, "dep")},
				files: []string{filepath.Join(base, "mod", "go.mod"), filepath.Join(base, "mod", "go.sum")},
			})
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(root, tt.file)
			if strings.HasPrefix(tt.file, "dep/") || strings.HasPrefix(tt.file, "mod/") {
				p = filepath.Join(base, tt.file)
			}
			if !tt.want {
				// A change counts when the watcher hears of it (its
				// directory is watched) and deems it relevant.
				heard := slices.Contains(w.fw.WatchList(), filepath.Dir(p))
				if heard && w.relevant(p) {
					t.Errorf("a change of %s counts", tt.file)
				}
				w.fw.Close()
				return
			}
			out := runWatcher(t, w, 20*time.Millisecond)
			// For "fresh/", the directory is created now: its creation is a
			// change, and the watcher starts watching it.
			before := time.Now()
			mkdir(t, filepath.Dir(p))
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			select {
			case at := <-out:
				if at.Before(before) {
					t.Errorf("notice time %v is before the change at %v", at, before)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no change notice")
			}
		})
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestWatcherDebounces: a burst of writes is one notice, dated at the
// first write. That no second notice follows is shown without waiting:
// a later change must bring a notice dated after it, which a notice left
// over from the burst would not be.
func TestWatcherDebounces(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	w, err := newWatcher(watchSet{tree: root})
	if err != nil {
		t.Fatal(err)
	}
	const quiet = time.Second
	out := runWatcher(t, w, quiet)
	// A burst is writes less than the quiet period apart. On a machine so
	// busy that one write waits longer than that, the writes are no burst
	// and prove nothing: write them again.
	for attempt := 0; ; attempt++ {
		start := time.Now()
		last := start
		burst := true
		for i := range 20 {
			if err := os.WriteFile(filepath.Join(root, "a.go"), []byte{byte(i)}, 0o644); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			burst = burst && now.Sub(last) < quiet/2
			last = now
		}
		at := nextNotice(t, out)
		if !burst && attempt < 5 {
			continue
		}
		if at.Before(start) {
			t.Errorf("notice dated %v, before the first write at %v", at, start)
		}
		break
	}
	before := time.Now()
	if err := os.WriteFile(filepath.Join(root, "b.go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if at := nextNotice(t, out); at.Before(before) {
		t.Errorf("a second notice (%v) for one burst", at)
	}
}

func nextNotice(t *testing.T, out <-chan time.Time) time.Time {
	t.Helper()
	select {
	case at := <-out:
		return at
	case <-time.After(20 * time.Second):
		t.Fatal("no change notice")
		return time.Time{}
	}
}

// runWatcher runs w with the given quiet period until the test ends and
// returns the channel it reports changes on.
func runWatcher(t *testing.T, w *watcher, quiet time.Duration) <-chan time.Time {
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan time.Time, 1)
	var wg sync.WaitGroup
	wg.Go(func() { w.run(ctx, quiet, out, func(err error) { t.Error(err) }) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return out
}
