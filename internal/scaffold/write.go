package scaffold

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// writeAll writes files under root all or nothing. Every target is checked
// before the first byte is written; each file is written to a temporary
// name and renamed into place, so a reader never sees half a file; and if
// anything fails, including verify (run once everything is in place), the
// files written are removed, the files replaced are restored and the
// directories made are removed again. A target that exists is an error
// unless replace names it.
func writeAll(root string, files []file, replace map[string]bool, verify func() error) (err error) {
	type undo struct {
		path string
		old  []byte // nil: the file did not exist
		mode fs.FileMode
	}
	var undos []undo
	var dirs []string
	defer func() {
		if err == nil {
			return
		}
		for i := len(undos) - 1; i >= 0; i-- {
			u := undos[i]
			if u.old == nil {
				os.Remove(u.path)
			} else {
				os.WriteFile(u.path, u.old, u.mode)
			}
		}
		for i := len(dirs) - 1; i >= 0; i-- {
			os.Remove(dirs[i]) // only if empty, which it is unless someone else wrote there
		}
	}()

	for _, f := range files {
		if err := checkTarget(root, f.rel, replace[f.rel]); err != nil {
			return err
		}
	}
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f.rel))
		made, err := mkdirAll(filepath.Dir(p))
		dirs = append(dirs, made...)
		if err != nil {
			return fmt.Errorf("creating directory for %s: %w", f.rel, err)
		}
		u := undo{path: p, mode: 0o644}
		if fi, err := os.Stat(p); err == nil {
			if u.old, err = os.ReadFile(p); err != nil {
				return fmt.Errorf("reading %s before replacing it: %w", f.rel, err)
			}
			if u.old == nil {
				u.old = []byte{}
			}
			u.mode = fi.Mode().Perm()
		}
		tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
		if err != nil {
			return fmt.Errorf("writing %s: %w", f.rel, err)
		}
		_, werr := tmp.Write(f.data)
		cerr := tmp.Close()
		if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), u.mode)); err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("writing %s: %w", f.rel, err)
		}
		if err := os.Rename(tmp.Name(), p); err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("writing %s: %w", f.rel, err)
		}
		undos = append(undos, u)
	}
	if verify != nil {
		return verify()
	}
	return nil
}

// checkTarget refuses a target that exists (unless it may be replaced) or
// whose directory cannot be made because a file is in the way.
func checkTarget(root, rel string, replace bool) error {
	p := filepath.Join(root, filepath.FromSlash(rel))
	fi, err := os.Lstat(p)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("%s is a directory, where a file would be written", rel)
	case err == nil && !replace:
		return fmt.Errorf("%w: %s", ErrExists, rel)
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("checking %s: %w", rel, err)
	}
	for d := filepath.Dir(p); len(d) >= len(root); d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				rd, _ := filepath.Rel(root, d)
				return fmt.Errorf("cannot write %s: %s is a file, not a directory", rel, filepath.ToSlash(rd))
			}
			return nil
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	return nil
}

// mkdirAll is os.MkdirAll that returns the directories it made, outermost
// first, so that they can be removed again.
func mkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	var made []string
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return made, err
		}
		made = append(made, missing[i])
	}
	return made, nil
}

// relSlash is rel for messages: slash-separated, relative to base.
func relSlash(base, p string) string {
	if ab, err := filepath.Abs(base); err == nil {
		base = ab
	}
	if ap, err := filepath.Abs(p); err == nil {
		p = ap
	}
	r, err := filepath.Rel(base, p)
	if err != nil || strings.HasPrefix(r, "..") {
		return filepath.ToSlash(p)
	}
	return filepath.ToSlash(r)
}
