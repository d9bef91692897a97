package scaffold

import (
	"bytes"
	"context"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run go test -update if the change is intended):\n%s", p, lineDiffText(string(want), string(got)))
	}
}

func lineDiffText(want, got string) string {
	return strings.Join(lineDiff(want, got), "\n")
}

// tree reads every file under dir into one text, "-- path --" before each,
// sorted by path.
func tree(t *testing.T, dir string) []byte {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "node_modules" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	var b bytes.Buffer
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		b.WriteString("-- " + filepath.ToSlash(rel) + " --\n")
		b.Write(data)
	}
	return b.Bytes()
}

func report(t *testing.T, res *Result) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := res.Report(&b, false); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// newProject runs Init in a temporary directory with a fixed metro
// version, so that output does not depend on how the test was built.
func newProject(t *testing.T, opts InitOptions) (string, *Result) {
	t.Helper()
	base := t.TempDir()
	opts.Dir = base
	if opts.Name == "" {
		opts.Name = "shop"
	}
	if opts.Version == "" {
		opts.Version = "v1.2.3"
	}
	res, err := Init(context.Background(), opts)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return filepath.Join(base, opts.Name), res
}

// Every template set, rendered and compared whole: a change to generated
// output shows up in review as a change to these files.
func TestGoldenTemplates(t *testing.T) {
	tests := []struct {
		name   string
		lang   string
		routes []string
	}{
		{"worker-go", LangGo, []string{"GET /invoices/{id}"}},
		{"worker-go-routes", LangGo, []string{"POST /invoices", "GET /invoices/{id}/lines/{line_no}", "/files/{path...}", "DELETE /user-profiles/{id}", "GET /{$}", "GET /a%20b/caf%C3%A9"}},
		{"worker-node", LangNode, nil},
		{"worker-node-routes", LangNode, []string{"GET /invoices/{id}", "POST /invoices", "/files/{path...}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _ := newProject(t, InitOptions{})
			res, err := AddWorker(context.Background(), WorkerOptions{Dir: dir, Name: "billing", Lang: tt.lang, Routes: tt.routes})
			if err != nil {
				t.Fatalf("AddWorker: %v", err)
			}
			golden(t, tt.name+".golden", tree(t, filepath.Join(dir, "workers", "billing")))
			golden(t, tt.name+".report.golden", report(t, res))
		})
	}
}

func TestGoldenProject(t *testing.T) {
	tests := []struct {
		name string
		opts InitOptions
	}{
		{"init", InitOptions{}},
		{"init-module", InitOptions{Module: "github.com/acme/shop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, res := newProject(t, tt.opts)
			golden(t, tt.name+".golden", tree(t, dir))
			golden(t, tt.name+".report.golden", report(t, res))
		})
	}
}

func TestGoldenDryRun(t *testing.T) {
	base := t.TempDir()
	res, err := Init(context.Background(), InitOptions{Dir: base, Name: "shop", Version: "v1.2.3", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(base); len(ents) != 0 {
		t.Errorf("init --dry-run wrote %d entries", len(ents))
	}
	golden(t, "init-dry-run.golden", report(t, res))

	dir, _ := newProject(t, InitOptions{})
	before := tree(t, dir)
	for _, lang := range Langs {
		res, err := AddWorker(context.Background(), WorkerOptions{Dir: dir, Name: "billing", Lang: lang, Routes: []string{"GET /invoices/{id}"}, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "worker-"+lang+"-dry-run.golden", report(t, res))
	}
	if after := tree(t, dir); !bytes.Equal(before, after) {
		t.Errorf("new worker --dry-run changed the project:\n%s", lineDiffText(string(before), string(after)))
	}
}
