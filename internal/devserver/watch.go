package devserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchSet is what one worker's reload follows.
type watchSet struct {
	// tree is watched with all its subdirectories; globs, when set, say
	// which files in it count (relative to tree).
	tree  string
	globs []string
	// dirs are watched without subdirectories: the packages a Go worker
	// imports from its module, each a single directory.
	dirs []string
	// files are single files, e.g. go.mod and go.sum.
	files []string
}

// watcher turns file system events into debounced change notices.
type watcher struct {
	set watchSet
	fw  *fsnotify.Watcher
	// flat holds the directories watched for their own files only.
	flat  map[string]bool
	files map[string]bool
	// roots are the directories whose removal ends their watches: the
	// tree and the flat directories. Each one's parent is watched too, so
	// that a root renamed away or deleted (git checkout deletes and
	// recreates) is seen coming back; missing holds those now gone.
	roots   map[string]bool
	missing map[string]bool
	// onMissing, when set, hears that a root went away or came back.
	onMissing func(dir string, gone bool)
}

func newWatcher(set watchSet) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching files: %w", err)
	}
	w := &watcher{set: set, fw: fw, flat: map[string]bool{}, files: map[string]bool{},
		roots: map[string]bool{}, missing: map[string]bool{}}
	if set.tree != "" {
		w.roots[set.tree] = true
		if err := w.addTree(set.tree); err != nil {
			fw.Close()
			return nil, err
		}
	}
	for _, d := range set.dirs {
		if w.underTree(d) {
			continue
		}
		w.flat[d] = true
		w.roots[d] = true
		if err := fw.Add(d); err != nil {
			fw.Close()
			return nil, fmt.Errorf("watching %s: %w", d, err)
		}
	}
	for r := range w.roots {
		// A root at / or with an unreadable parent just cannot be seen
		// coming back; everything else works as before.
		if parent := filepath.Dir(r); parent != r {
			_ = fw.Add(parent)
		}
	}
	for _, f := range set.files {
		w.files[f] = true
		d := filepath.Dir(f)
		if w.flat[d] || w.underTree(d) {
			continue
		}
		// Watch the directory, not the file: editors replace files by
		// renaming, which would end a watch on the file itself.
		if err := fw.Add(d); err != nil {
			fw.Close()
			return nil, fmt.Errorf("watching %s: %w", d, err)
		}
	}
	return w, nil
}

func (w *watcher) underTree(p string) bool {
	if w.set.tree == "" {
		return false
	}
	rel, err := filepath.Rel(w.set.tree, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// addTree watches root and every directory below it that is not skipped.
func (w *watcher) addTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return fmt.Errorf("watching %s: %w", root, err)
			}
			return nil // gone already, or unreadable: not ours to watch
		}
		if !d.IsDir() {
			return nil
		}
		if p != root && skipDir(d.Name()) {
			return filepath.SkipDir
		}
		if err := w.fw.Add(p); err != nil {
			return fmt.Errorf("watching %s: %w", p, err)
		}
		return nil
	})
}

// skipDir leaves out directories that never hold a worker's sources and
// can be huge or busy: VCS data, metro's own output, dependencies.
func skipDir(name string) bool {
	return strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata"
}

// ignoredFile leaves out editor droppings (swap and backup files, vim's
// "4913" probe) and Go tests, which never change a binary.
func ignoredFile(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") ||
		strings.HasSuffix(name, ".swp") || strings.HasSuffix(name, ".swx") ||
		name == "4913" || strings.HasSuffix(name, "_test.go")
}

// relevant reports whether a change of p should reload the worker.
func (w *watcher) relevant(p string) bool {
	if w.files[p] {
		return true
	}
	base := filepath.Base(p)
	if ignoredFile(base) {
		return false
	}
	dir := filepath.Dir(p)
	if w.flat[dir] {
		return true
	}
	if !w.underTree(p) {
		return false
	}
	if len(w.set.globs) == 0 {
		return true
	}
	rel, err := filepath.Rel(w.set.tree, p)
	if err != nil {
		return false
	}
	rel = filepath.ToSlash(rel)
	for _, g := range w.set.globs {
		if matchGlob(g, rel) {
			return true
		}
	}
	return false
}

// run reports changes on out until ctx ends: after a relevant event it
// waits until no further one comes for quiet, then sends the time of the
// first event of the burst (when the user saved). If the receiver is busy,
// the notice already waiting keeps its earlier time. It closes the
// fsnotify watcher before returning.
func (w *watcher) run(ctx context.Context, quiet time.Duration, out chan time.Time, warn func(error)) {
	defer w.fw.Close()
	var first time.Time
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: assume something changed.
				if first.IsZero() {
					first = time.Now()
				}
				timer.Reset(quiet)
				continue
			}
			warn(err)
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			if w.roots[ev.Name] {
				if w.rootEvent(ev, warn) {
					if first.IsZero() {
						first = time.Now()
					}
					timer.Reset(quiet)
				}
				continue
			}
			if ev.Op.Has(fsnotify.Create) && w.underTree(ev.Name) && !skipDir(filepath.Base(ev.Name)) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					// A new directory: watch it (and whatever was created in
					// it before the watch took hold).
					if err := w.addTree(ev.Name); err != nil {
						warn(err)
					}
				}
			}
			if !w.relevant(ev.Name) {
				continue
			}
			if first.IsZero() {
				first = time.Now()
			}
			timer.Reset(quiet)
		case <-timer.C:
			select {
			case out <- first:
			default:
			}
			first = time.Time{}
		}
	}
}

// rootEvent follows a root directory leaving or coming back, and reports
// whether it came back: a change to build, since anything may differ.
// Renamed, a directory keeps its watches, which would then report the
// new place's files under the old names, so they are dropped. A delete
// and recreate (git checkout) may be over before its first event is
// read: gone and back at once is a change, with nothing to say.
func (w *watcher) rootEvent(ev fsnotify.Event, warn func(error)) bool {
	root := ev.Name
	wasMissing := w.missing[root]
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		w.missing[root] = true
		for _, p := range w.fw.WatchList() {
			if p == root || root == w.set.tree && w.underTree(p) {
				_ = w.fw.Remove(p) // gone with its directory already, often
			}
		}
	}
	if !w.missing[root] {
		return false
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		if !wasMissing && w.onMissing != nil {
			w.onMissing(root, true)
		}
		return false
	}
	delete(w.missing, root)
	var err error
	if root == w.set.tree {
		err = w.addTree(root)
	} else {
		err = w.fw.Add(root)
	}
	if err != nil {
		warn(err)
	}
	if wasMissing && w.onMissing != nil {
		w.onMissing(root, false)
	}
	return true
}
