package devserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// BuildError is a failed go build: Output holds the compiler's messages.
type BuildError struct {
	Worker string
	Output string
	Err    error
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("building %s: %v\n%s", e.Worker, e.Err, strings.TrimRight(e.Output, "\n"))
}

func (e *BuildError) Unwrap() error { return e.Err }

// goBuild builds the main package pkg (a path relative to dir, or
// absolute) into out. Cancelling ctx kills the whole build, compiler
// processes included, so a newer change never waits for a stale build.
func goBuild(ctx context.Context, worker, dir, pkg, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("building %s: %w", worker, err)
	}
	if !filepath.IsAbs(pkg) && !strings.HasPrefix(pkg, ".") {
		// "workers/catalog" would be read as an import path.
		pkg = "./" + pkg
	}
	// No DWARF and no symbol table: linking is most of a rebuild, and this
	// halves it. Stack traces still work (they use pclntab); debuggers
	// want a build of their own anyway. No VCS stamping either: it runs
	// git status on every build.
	cmd := exec.CommandContext(ctx, "go", "build", "-ldflags=-s -w", "-buildvcs=false", "-o", out, pkg)
	cmd.Dir = dir
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error {
		killGroup(cmd.Process, syscall.SIGKILL)
		return nil
	}
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("building %s: %w", worker, context.Cause(ctx))
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &BuildError{Worker: worker, Output: buf.String(), Err: err}
		}
		return fmt.Errorf("building %s: %w", worker, err)
	}
	return nil
}

// localDeps lists the directories of the packages that pkg imports from
// its own module (pkg's own included): a change in any of them changes
// the binary. Packages from the module cache never change under us.
func localDeps(ctx context.Context, dir, pkg string) (moduleRoot string, dirs []string, err error) {
	if !filepath.IsAbs(pkg) && !strings.HasPrefix(pkg, ".") {
		pkg = "./" + pkg
	}
	cmd := exec.CommandContext(ctx, "go", "list", "-e", "-deps",
		"-f", "{{with .Module}}{{if .Main}}{{.Dir}}\t{{$.Dir}}{{end}}{{end}}", pkg)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return "", nil, fmt.Errorf("listing the packages %s imports: %w: %s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		mod, d, ok := strings.Cut(l, "\t")
		if !ok {
			continue
		}
		moduleRoot = mod
		dirs = append(dirs, d)
	}
	return moduleRoot, dirs, nil
}
