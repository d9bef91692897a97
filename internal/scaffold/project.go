package scaffold

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/templates"
)

// InitOptions is `metro init`.
type InitOptions struct {
	Dir      string // where the project directory is made; "" is the working directory
	Name     string // the project, and its directory; a DNS-1123 label
	Module   string // the Go module path; "" is Name
	MetroSrc string // a metro source tree that go.mod replaces the module with
	// Version is the metro version go.mod requires; "" is BuildVersion().
	Version string
	Force   bool // write into a directory that is not empty, replacing files
	DryRun  bool // report, write nothing
	// Tidy runs `go mod tidy` in the new project, so that go.sum is there
	// before the first build; its output goes to Stderr.
	Tidy   bool
	Stderr io.Writer
}

// projectData is what the project templates see.
type projectData struct {
	Name, Module, GoVersion, GoMinor string
	MetroVersion, MetroSrc           string
}

// Init makes a new project: go.mod, metro.yaml, the worker workers/hello,
// README.md, .gitignore, .dockerignore and the gateway's Dockerfile.
func Init(ctx context.Context, opts InitOptions) (*Result, error) {
	if err := CheckName("project", opts.Name); err != nil {
		return nil, err
	}
	module := opts.Module
	if module == "" {
		module = opts.Name
	}
	if err := checkModule(module); err != nil {
		return nil, err
	}
	data := projectData{Name: opts.Name, Module: module, GoVersion: GoVersion, GoMinor: goMinor()}
	var err error
	if data.MetroVersion, data.MetroSrc, err = metroRequirement(opts.Version, opts.MetroSrc); err != nil {
		return nil, err
	}
	base := opts.Dir
	if base == "" {
		base = "."
	}
	dir := filepath.Join(base, opts.Name)
	replace := map[string]bool{}
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return nil, fmt.Errorf("%w: %s is a file", ErrExists, dir)
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", dir, err)
		}
		if len(ents) > 0 && !opts.Force {
			return nil, fmt.Errorf("%w: %s has files in it (--force writes there anyway, replacing what metro init writes)", ErrNotEmpty, dir)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("checking %s: %w", dir, err)
	}

	files, err := render(templates.Project, "project", "", data)
	if err != nil {
		return nil, err
	}
	routes, err := parseRoutes([]string{"GET /hello", "GET /hello/{name}"})
	if err != nil {
		return nil, err
	}
	worker, entry, err := renderWorker(opts.Name, LangGo, "hello", "workers/hello", routes)
	if err != nil {
		return nil, err
	}
	for i, f := range files {
		if f.rel == config.FileName {
			if files[i].data, err = addWorker(f.data, "hello", entry); err != nil {
				return nil, fmt.Errorf("rendering %s: %w", config.FileName, err)
			}
		}
	}
	files = append(files, worker...)
	if opts.Force {
		for _, f := range files {
			replace[f.rel] = true
		}
	}

	res := &Result{DryRun: opts.DryRun, base: base, root: dir}
	for _, f := range files {
		res.Created = append(res.Created, f.rel)
	}
	res.Next = []string{"cd " + relSlash(base, dir)}
	if opts.DryRun {
		res.Next = append(res.Next, initNext(routes)...)
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	err = writeAll(dir, files, replace, func() error {
		if _, err := config.Load(filepath.Join(dir, config.FileName)); err != nil {
			return fmt.Errorf("checking the new %s: %w", config.FileName, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if opts.Tidy {
		if err := goModTidy(ctx, dir, opts.Stderr); err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%v; run it in %s before building", err, relSlash(base, dir)))
			res.Next = append(res.Next, "go mod tidy")
		}
	} else {
		res.Next = append(res.Next, "go mod tidy")
	}
	res.Next = append(res.Next, initNext(routes)...)
	return res, nil
}

func initNext(routes []route) []string {
	// The curl lines say localhost; the gateway is reachable from other
	// machines too, and the user should know.
	next := []string{"go test ./...", "metro dev   # the gateway listens on :8080, every interface (gateway.listen)"}
	for _, r := range routes {
		next = append(next, curl(":8080", r))
	}
	return append(next, `metro new worker billing --route "GET /invoices/{id}"`)
}

// metroRequirement decides what go.mod requires of metro. A release build
// requires its own version. A build from a source tree has no version that
// exists anywhere else, so it needs --metro-src: generating a go.mod that
// cannot resolve would only move the failure to the first build, where it
// is harder to understand.
func metroRequirement(version, src string) (string, string, error) {
	if version == "" {
		version = BuildVersion()
	}
	if src != "" {
		abs, err := filepath.Abs(src)
		if err != nil {
			return "", "", fmt.Errorf("resolving --metro-src %s: %w", src, err)
		}
		if !isMetroSource(abs) {
			return "", "", fmt.Errorf("%w: --metro-src %s has no go.mod of module %s", ErrMetroSrc, src, ModulePath)
		}
		if version == "" {
			version = placeholderVersion
		}
		return version, abs, nil
	}
	if version == "" {
		msg := "this metro binary was built from source; pass --metro-src DIR (or set METRO_SRC) to a metro source tree"
		if hint := sourceTreeHint(); hint != "" {
			msg += ", e.g. --metro-src " + hint
		}
		return "", "", fmt.Errorf("%w: %s", ErrMetroSrc, msg)
	}
	return version, "", nil
}

// checkModule rejects module paths that the go command would refuse, with
// the common mistakes named; the go command has the last word.
func checkModule(m string) error {
	bad := m == "" || strings.HasPrefix(m, "/") || strings.HasPrefix(m, ".") ||
		strings.HasSuffix(m, "/") || strings.Contains(m, "//") || strings.Contains(m, "..") ||
		strings.ContainsFunc(m, func(r rune) bool {
			return r <= ' ' || r >= 0x7f || strings.ContainsRune("\"'`\\:;,<>|?*", r)
		})
	if bad {
		return fmt.Errorf("%w: module path %q: want something like example.com/shop or shop", ErrInvalidName, m)
	}
	return nil
}

// goModTidy runs `go mod tidy` in dir.
func goModTidy(ctx context.Context, dir string, stderr io.Writer) error {
	return runTool(ctx, dir, stderr, "go", "mod", "tidy")
}

// runTool runs a tool of the language (go, npm) in dir, its output to
// stderr. The child runs in its own process group, killed as a whole if
// ctx ends.
func runTool(ctx context.Context, dir string, stderr io.Writer, name string, args ...string) error {
	what := strings.Join(append([]string{name}, args...), " ")
	if _, err := exec.LookPath(name); err != nil {
		return fmt.Errorf("running %s: %s is not installed", what, name)
	}
	if stderr == nil {
		stderr = io.Discard
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running %s: %w", what, err)
	}
	return nil
}
