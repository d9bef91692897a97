package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A worker is exactly one of path, run and mock; a mock names a file.
func TestWorkerMock(t *testing.T) {
	dir := project(t, "catalog", "rec-dir")
	if err := os.WriteFile(filepath.Join(dir, "rec.ndjson"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("metro.yaml", dir, []byte("workers:\n  catalog:\n    mock: rec.ndjson\n"))
	if err != nil {
		t.Fatalf("a mock worker: %v", err)
	}
	if c.Workers["catalog"].Mock != "rec.ndjson" {
		t.Errorf("mock = %q", c.Workers["catalog"].Mock)
	}
	for _, tt := range []struct{ src, want string }{
		{"workers:\n  catalog:\n    path: ./catalog\n    mock: rec.ndjson\n", "metro.yaml:2: workers.catalog: has both path and mock"},
		{"workers:\n  catalog:\n    run: x\n    mock: rec.ndjson\n", "metro.yaml:2: workers.catalog: has both run and mock"},
		{"workers:\n  catalog:\n    path: ./catalog\n    run: x\n    mock: rec.ndjson\n", "metro.yaml:2: workers.catalog: has path, run and mock"},
		{"workers:\n  catalog:\n    mock: missing.ndjson\n", "metro.yaml:3: workers.catalog.mock: missing.ndjson does not exist"},
		{"workers:\n  catalog:\n    mock: rec-dir\n", "metro.yaml:3: workers.catalog.mock: rec-dir is not a file"},
		{"workers:\n  catalog:\n    mock: [a]\n", "metro.yaml:3: workers.catalog.mock: expected a string"},
		{"workers:\n  catalog: {replicas: 2}\n", "needs path (a Go package to build), run (a command) or mock"},
	} {
		_, err := Parse("metro.yaml", dir, []byte(tt.src))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.src, err, tt.want)
		}
	}
}
