package scaffold

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportColourAndWarnings(t *testing.T) {
	dir, _ := newProject(t, InitOptions{})
	if err := os.Remove(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatal(err)
	}
	res, err := AddWorker(context.Background(), WorkerOptions{Dir: dir, Name: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		color bool
		esc   bool
	}{{false, false}, {true, true}}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		if err := res.Report(&out, tt.color); err != nil {
			t.Fatal(err)
		}
		if err := res.Warn(&errOut, tt.color); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(out.String()+errOut.String(), "\x1b["); got != tt.esc {
			t.Errorf("color %v: escape codes %v, want %v:\n%q", tt.color, got, tt.esc, out.String())
		}
		if !strings.Contains(errOut.String(), "warning:") || !strings.Contains(errOut.String(), "no go.mod beside metro.yaml") {
			t.Errorf("warnings %q lack the missing go.mod", errOut.String())
		}
		if strings.Contains(out.String(), "warning") {
			t.Errorf("a warning went to stdout: %q", out.String())
		}
	}
}
