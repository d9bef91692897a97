package devserver

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/metropolis-dev/metro/internal/config"
)

// A mock: worker runs metro's own `mock` subcommand on its recording and
// restarts on a change of that file; a recording that does not parse
// stops metro dev at start, naming metro.yaml's line and the file's.
func TestMockWorker(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"rec.ndjson": `{"subject":"a.GET","method":"GET","path":"/a","outcome":"ok","status":200,"request":{},"reply":{"body":"x"}}` + "\n",
		"bad.ndjson": `{"subject":"a.GET","method":"GET","path":"/a","outcome":"ok","status":200,"request":{},"reply":{"body":"x"}}` + "\n" + `{"subject":`,
	})
	load := func(src string) *config.Config {
		t.Helper()
		cfg, err := config.Parse(filepath.Join(dir, "metro.yaml"), dir, []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	specs, err := resolveWorkers(load("workers:\n  catalog:\n    mock: rec.ndjson\n    replicas: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	s := specs[0]
	if want := []string{self, "mock", "catalog", "--from", filepath.Join(dir, "rec.ndjson")}; !slices.Equal(s.argv(), want) {
		t.Errorf("argv %q, want %q", s.argv(), want)
	}
	if s.replicas != 2 || s.dir != dir || !slices.Equal(s.watch.files, []string{filepath.Join(dir, "rec.ndjson")}) {
		t.Errorf("spec %+v", s)
	}

	_, err = resolveWorkers(load("workers:\n  catalog:\n    mock: bad.ndjson\n"))
	want := "metro.yaml:3: workers.catalog.mock: " + filepath.Join(dir, "bad.ndjson") + ":2: "
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("bad recording: %v, want %q", err, want)
	}
}
