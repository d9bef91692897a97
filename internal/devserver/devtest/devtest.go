// Package devtest makes throwaway copies of metro projects that live in
// this repository (examples/shop, test fixtures), for tests and the reload
// benchmark. A project inside the repository belongs to the metro module;
// its copy elsewhere becomes a module of its own that requires metro
// through a replace directive pointing at the checkout, so it builds
// exactly as a user's project would, against the working tree.
package devtest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ModulePath is the metro module.
const ModulePath = "github.com/metropolis-dev/metro"

// RepoRoot returns the directory of metro's go.mod at or above dir.
func RepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module "+ModulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("devtest: not inside the metro repository")
		}
		dir = parent
	}
}

// CopyProject copies the project directory src (inside the metro
// repository) to dst and makes dst its own module, named "example.com/"
// plus src's base name. Imports of src's packages under metro's module
// path are rewritten to the new module path. The module's go.mod
// repeats metro's requirements, so nothing needs downloading and the
// copy builds offline with the same versions; its go.sum is metro's.
func CopyProject(src, dst string) (module string, err error) {
	root, err := RepoRoot(src)
	if err != nil {
		return "", err
	}
	absSrc, err := filepath.Abs(src)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(root, absSrc)
	if err != nil {
		return "", err
	}
	oldPath := ModulePath + "/" + filepath.ToSlash(rel)
	module = "example.com/" + filepath.Base(absSrc)
	err = filepath.WalkDir(absSrc, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(absSrc, p)
		target := filepath.Join(dst, r)
		if d.IsDir() {
			if d.Name() == ".metro" {
				return filepath.SkipDir
			}
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".go") {
			b = bytes.ReplaceAll(b, []byte(`"`+oldPath), []byte(`"`+module))
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		return "", fmt.Errorf("copying %s: %w", src, err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	gomod = bytes.Replace(gomod, []byte("module "+ModulePath+"\n"), []byte("module "+module+"\n"), 1)
	gomod = fmt.Appendf(gomod, "\nrequire %s v0.0.0\n\nreplace %s => %s\n", ModulePath, ModulePath, root)
	if err := os.WriteFile(filepath.Join(dst, "go.mod"), gomod, 0o644); err != nil {
		return "", err
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dst, "go.sum"), sum, 0o644); err != nil {
		return "", err
	}
	return module, nil
}
