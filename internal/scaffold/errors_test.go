package scaffold

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every refusal leaves the project exactly as it was.
func TestAddWorkerRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) // breaks the project first
		opts  WorkerOptions
		is    error
		msg   string
	}{
		{"bad-name", nil, WorkerOptions{Name: "Billing"}, ErrInvalidName, "DNS-1123"},
		{"underscore", nil, WorkerOptions{Name: "bill_ing"}, ErrInvalidName, "DNS-1123"},
		{"leading-dash", nil, WorkerOptions{Name: "-billing"}, ErrInvalidName, "DNS-1123"},
		{"too-long", nil, WorkerOptions{Name: strings.Repeat("a", 64)}, ErrInvalidName, "DNS-1123"},
		{"reserved-gateway", nil, WorkerOptions{Name: "gateway"}, ErrInvalidName, `"gateway" is metro's own`},
		{"reserved-nats", nil, WorkerOptions{Name: "nats"}, ErrInvalidName, `"nats" is metro's own`},
		{"reserved-dev", nil, WorkerOptions{Name: "dev"}, ErrInvalidName, `"dev" is metro's own`},
		{"lang", nil, WorkerOptions{Name: "billing", Lang: "rust"}, ErrUnknownLang, "go, node"},
		{"route", nil, WorkerOptions{Name: "billing", Routes: []string{"GET invoices"}}, ErrInvalidRoute, "must start with /"},
		{"duplicate", nil, WorkerOptions{Name: "hello"}, ErrExists, "line"},
		{"dir-in-the-way", func(t *testing.T, dir string) {
			mkdir(t, filepath.Join(dir, "workers", "billing"))
		}, WorkerOptions{Name: "billing"}, ErrExists, "in the way"},
		{"malformed-yaml", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, "metro.yaml"), "  oops: [\n")
		}, WorkerOptions{Name: "billing"}, nil, "metro.yaml"},
		{"invalid-yaml", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, "metro.yaml"), "colour: blue\n")
		}, WorkerOptions{Name: "billing"}, nil, "colour"},
		{"workers-file", func(t *testing.T, dir string) {
			os.RemoveAll(filepath.Join(dir, "workers"))
			write(t, filepath.Join(dir, "workers"), "not a directory")
			// metro.yaml must stay valid for the write to be attempted.
			write(t, filepath.Join(dir, "metro.yaml"), "name: shop\n")
		}, WorkerOptions{Name: "billing"}, nil, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _ := newProject(t, InitOptions{})
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			before := tree(t, dir)
			tt.opts.Dir = dir
			_, err := AddWorker(context.Background(), tt.opts)
			if err == nil {
				t.Fatal("AddWorker succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			if after := tree(t, dir); !bytes.Equal(before, after) {
				t.Errorf("a refused worker changed the project:\n%s", lineDiffText(string(before), string(after)))
			}
		})
	}
}

func TestAddWorkerNeedsProject(t *testing.T) {
	dir := t.TempDir()
	_, err := AddWorker(context.Background(), WorkerOptions{Dir: dir, Name: "billing"})
	if err == nil || !strings.Contains(err.Error(), "metro init") {
		t.Fatalf("got %v, want a hint to run metro init", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("wrote %d entries", len(ents))
	}
}

// A user's comments, blank lines and order survive metro new worker, and
// it works from a subdirectory of the project, like go commands.
func TestAddWorkerKeepsUserText(t *testing.T) {
	dir, _ := newProject(t, InitOptions{})
	p := filepath.Join(dir, "metro.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	user := strings.Replace(string(b), "name: shop\n", "name: shop  # do not rename: the cluster knows it\n\n# routing\n", 1)
	user = strings.Replace(user, "    path: ./workers/hello\n", "    path: ./workers/hello   # says hello\n    replicas: 2\n", 1)
	write(t, p, user)
	sub := filepath.Join(dir, "workers", "hello")
	if _, err := AddWorker(context.Background(), WorkerOptions{Dir: sub, Name: "billing"}); err != nil {
		t.Fatal(err)
	}
	if _, err := AddWorker(context.Background(), WorkerOptions{Dir: sub, Name: "notify", Lang: LangNode}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := user + "  billing:\n    path: ./workers/billing\n" +
		"  notify:\n    run: node index.js\n    dir: ./workers/notify\n    watch: [\"**/*.js\"]\n"
	if string(got) != want {
		t.Errorf("metro.yaml:\n%s\nwant:\n%s", got, want)
	}
}

func TestInitRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, base string)
		opts  InitOptions
		is    error
		msg   string
	}{
		{"bad-name", nil, InitOptions{Name: "My Shop", Version: "v1.0.0"}, ErrInvalidName, "DNS-1123"},
		{"bad-module", nil, InitOptions{Name: "shop", Module: "github.com/acme/shop ", Version: "v1.0.0"}, ErrInvalidName, "module path"},
		{"not-empty", func(t *testing.T, base string) {
			write(t, filepath.Join(base, "shop", "notes.txt"), "mine")
		}, InitOptions{Name: "shop", Version: "v1.0.0"}, ErrNotEmpty, "--force"},
		{"file", func(t *testing.T, base string) {
			write(t, filepath.Join(base, "shop"), "mine")
		}, InitOptions{Name: "shop", Version: "v1.0.0"}, ErrExists, "is a file"},
		{"no-release", nil, InitOptions{Name: "shop"}, ErrMetroSrc, "--metro-src"},
		{"src-not-metro", func(t *testing.T, base string) {
			write(t, filepath.Join(base, "other", "go.mod"), "module example.com/other\n")
		}, InitOptions{Name: "shop", MetroSrc: "other"}, ErrMetroSrc, "no go.mod of module"},
		{"force-into-a-file", func(t *testing.T, base string) {
			// --force may replace files, but workers/ is a file here: the
			// whole init must be refused before anything is written.
			write(t, filepath.Join(base, "shop", "workers"), "mine")
		}, InitOptions{Name: "shop", Version: "v1.0.0", Force: true}, nil, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, base)
			}
			t.Chdir(base) // MetroSrc is relative to the working directory
			before := tree(t, base)
			tt.opts.Dir = base
			_, err := Init(context.Background(), tt.opts)
			if err == nil {
				t.Fatal("Init succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			if after := tree(t, base); !bytes.Equal(before, after) {
				t.Errorf("a refused init changed the directory:\n%s", lineDiffText(string(before), string(after)))
			}
		})
	}
}

func TestInitForceReplaces(t *testing.T) {
	base := t.TempDir()
	write(t, filepath.Join(base, "shop", "go.mod"), "module old\n")
	write(t, filepath.Join(base, "shop", "notes.txt"), "mine")
	if _, err := Init(context.Background(), InitOptions{Dir: base, Name: "shop", Version: "v1.0.0", Force: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(base, "shop", "go.mod")); !strings.HasPrefix(string(b), "module shop\n") {
		t.Errorf("go.mod not replaced: %s", b)
	}
	if b, _ := os.ReadFile(filepath.Join(base, "shop", "notes.txt")); string(b) != "mine" {
		t.Errorf("notes.txt: %q", b)
	}
}

func TestMetroRequirement(t *testing.T) {
	src := repoRoot(t)
	tests := []struct {
		version, src         string
		wantVersion, wantSrc string
	}{
		{"v1.2.3", "", "v1.2.3", ""},
		{"v1.2.3", src, "v1.2.3", src},
	}
	for _, tt := range tests {
		v, s, err := metroRequirement(tt.version, tt.src)
		if err != nil || v != tt.wantVersion || s != tt.wantSrc {
			t.Errorf("metroRequirement(%q, %q) = %q, %q, %v", tt.version, tt.src, v, s, err)
		}
	}
	// The test binary is a build from source: no release to require.
	if BuildVersion() == "" {
		v, s, err := metroRequirement("", src)
		if err != nil || v != placeholderVersion || s != src {
			t.Errorf("from source with --metro-src: %q, %q, %v", v, s, err)
		}
	}
}

// writeAll undoes everything when a write fails half-way: files it made
// are removed, files it replaced are restored, directories it made are
// gone.
func TestWriteAllRollsBack(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "keep.txt"), "old")
	write(t, filepath.Join(root, "blocker"), "a file where a directory is needed")
	files := []file{
		{rel: "a/b/new.txt", data: []byte("new")},
		{rel: "keep.txt", data: []byte("replaced")},
		{rel: "c/d.txt", data: []byte("more")},
		{rel: "blocker/x/y.txt", data: []byte("fails")},
	}
	before := tree(t, root)
	// The check before writing catches the blocker...
	if err := writeAll(root, files, map[string]bool{"keep.txt": true}, nil); err == nil || !strings.Contains(err.Error(), "blocker is a file") {
		t.Fatalf("writeAll: %v, want the blocker refused", err)
	}
	if after := tree(t, root); !bytes.Equal(before, after) {
		t.Fatalf("refused write changed files:\n%s", lineDiffText(string(before), string(after)))
	}
	// ...and a failure after everything is written is undone.
	boom := errors.New("boom")
	err := writeAll(root, files[:3], map[string]bool{"keep.txt": true}, func() error {
		if b, _ := os.ReadFile(filepath.Join(root, "keep.txt")); string(b) != "replaced" {
			t.Errorf("keep.txt not written before verify: %q", b)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("writeAll: %v, want boom", err)
	}
	if after := tree(t, root); !bytes.Equal(before, after) {
		t.Errorf("failed write left changes:\n%s", lineDiffText(string(before), string(after)))
	}
	for _, d := range []string{"a", "c"} {
		if _, err := os.Stat(filepath.Join(root, d)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("directory %s left behind: %v", d, err)
		}
	}
	// A real I/O failure half-way, which no check foresees: the first
	// file is made where the second needs a directory.
	err = writeAll(root, []file{files[0], {rel: "x", data: []byte("x")}, {rel: "x/y.txt", data: []byte("y")}}, nil, nil)
	if err == nil {
		t.Fatal("writeAll succeeded")
	}
	if after := tree(t, root); !bytes.Equal(before, after) {
		t.Errorf("failed write left changes:\n%s", lineDiffText(string(before), string(after)))
	}
	if _, err := os.Stat(filepath.Join(root, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory a left behind: %v", err)
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if !isMetroSource(dir) {
		t.Fatalf("%s is not the metro source tree", dir)
	}
	return dir
}

func write(t *testing.T, p, s string) {
	t.Helper()
	mkdir(t, filepath.Dir(p))
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}
