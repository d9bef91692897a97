package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metropolis-dev/metro/internal/iostreams"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/recording"
)

// TestMockCommandBadRecording: a recording that cannot stand in for the
// worker (missing, truncated, hand-edited, no reply from that worker) is
// misuse, exit 2 with one line naming the file, as metro replay answers
// the same files (TestReplayCommand).
func TestMockCommandBadRecording(t *testing.T) {
	s := natstest.Run(t)
	url := s.ClientURL()
	dir := t.TempDir()
	var buf bytes.Buffer
	w := recording.NewWriter(&buf, nil)
	jsonType := http.Header{"Content-Type": {"application/json"}}
	for _, path := range []string{"/items/1", "/items/2", "/items/3"} {
		w.Write(recording.Exchange{Subject: "items.GET", Method: "GET", Path: path, Worker: "catalog", Route: "GET /items/{id}", Outcome: "ok", Status: 200,
			Reply: &recording.Message{Header: jsonType, Body: []byte(`{"id":1}`)}})
	}
	w.Flush()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rec := write("rec.ndjson", buf.Bytes())
	truncated := write("truncated.ndjson", buf.Bytes()[:len(buf.Bytes())-40])
	edited := write("edited.ndjson", bytes.Replace(buf.Bytes(), []byte(`"status":200`), []byte(`"status":"200"`), 1))
	for _, tt := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"truncated file", []string{"mock", "catalog", "--from", truncated, "--server", url}, truncated + ":3: "},
		{"hand-edited file", []string{"mock", "catalog", "--from", edited, "--server", url}, edited + ":1: status: a JSON string where a number belongs"},
		{"missing file", []string{"mock", "catalog", "--from", filepath.Join(dir, "nope"), "--server", url}, "reading the recording"},
		{"no reply from the worker", []string{"mock", "orders", "--from", rec, "--server", url}, rec + " records no reply from worker orders (it has replies from catalog)"},
		{"no file given", []string{"mock", "catalog", "--server", url}, "--from FILE is required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, out, errb := iostreams.Test()
			code := run(context.Background(), ios, tt.args)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, out, errb)
			}
			if !strings.Contains(errb.String(), tt.wantErr) || strings.Count(strings.TrimSpace(errb.String()), "\n") > 0 {
				t.Errorf("stderr %q, want one line with %q", errb, tt.wantErr)
			}
		})
	}
}
