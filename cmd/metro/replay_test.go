package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/metropolis-dev/metro/internal/iostreams"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/recording"
)

// TestReplayCommand runs metro replay against an SDK worker on a real
// NATS server: exit 0 when replies match, 1 and a diff naming the field
// when one differs, 2 for misuse and for a recording that does not parse.
func TestReplayCommand(t *testing.T) {
	s := natstest.Run(t)
	url := s.ClientURL()
	var n atomic.Int64
	binary := []byte{0x89, 'P', 'N', 'G', 0, 0xff, 0xfe, '\n', 1}
	callWorker(t, url, "counter", map[string]http.HandlerFunc{
		"GET /n": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"n":%d,"v":"x"}`, n.Add(1))
		},
		"POST /echo": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			io.Copy(w, r.Body)
		},
	})
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec.ndjson")
	var buf bytes.Buffer
	w := recording.NewWriter(&buf, nil)
	jsonType := http.Header{"Content-Type": {"application/json"}}
	w.Write(recording.Exchange{Subject: "n.GET", Method: "GET", Path: "/n", Outcome: "ok", Status: 200, Reply: &recording.Message{Header: jsonType, Body: []byte(`{"n":1,"v":"x"}`)}})
	w.Write(recording.Exchange{Subject: "echo.POST", Method: "POST", Path: "/echo", Outcome: "ok", Status: 200,
		Request: recording.Message{Body: binary},
		Reply:   &recording.Message{Header: http.Header{"Content-Type": {"application/octet-stream"}}, Body: binary}})
	w.Write(recording.Exchange{Subject: "n.GET", Method: "GET", Path: "/n", Outcome: "timeout"})
	w.Flush()
	os.WriteFile(rec, buf.Bytes(), 0o644)
	truncated := filepath.Join(dir, "truncated.ndjson")
	os.WriteFile(truncated, buf.Bytes()[:len(buf.Bytes())-40], 0o644)
	edited := filepath.Join(dir, "edited.ndjson")
	os.WriteFile(edited, bytes.Replace(buf.Bytes(), []byte(`"status":200`), []byte(`"status":"200"`), 1), 0o644)

	for _, tt := range []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
		wantErr  string
	}{
		{"match with ignore", []string{"replay", rec, "--server", url, "--ignore", "$.n"}, 0,
			[]string{"replayed 2 exchanges: 2 match, 0 differ, 0 failed (1 skipped: no recorded reply)"}, ""},
		{"a field differs", []string{"replay", rec, "--server", url, "--filter", "GET /n"}, 1,
			[]string{"DIFF GET /n (" + rec + ":1)", "  body $.n: want 1, got "}, "1 of 1 replayed exchanges differ"},
		{"json", []string{"replay", rec, "--server", url, "--json", "--concurrency", "4", "--filter", "echo.POST"}, 0,
			[]string{`{"line":2,"method":"POST","path":"/echo","result":"match","want_status":200,"status":200,`}, ""},
		{"truncated file", []string{"replay", truncated, "--server", url}, 2, nil, truncated + ":3: "},
		{"hand-edited file", []string{"replay", edited, "--server", url}, 2, nil, edited + ":1: status: a JSON string where a number belongs"},
		{"missing file", []string{"replay", filepath.Join(dir, "nope"), "--server", url}, 2, nil, "reading the recording"},
		{"bad filter", []string{"replay", rec, "--filter", "GET /x/{bad"}, 2, nil, "--filter"},
		{"filter matches nothing", []string{"replay", rec, "--filter", "DELETE /n", "--server", url}, 2, nil, "no exchange of"},
		{"bad ignore", []string{"replay", rec, "--ignore", "$[", "--server", url}, 2, nil, "--ignore"},
		{"bad gateway", []string{"replay", rec, "--gateway", "localhost:1"}, 2, nil, "--gateway"},
		{"bad concurrency", []string{"replay", rec, "--concurrency", "0"}, 2, nil, "--concurrency"},
		{"no file", []string{"replay"}, 2, nil, "accepts 1 arg"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, out, errb := iostreams.Test()
			code := run(context.Background(), ios, tt.args)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out, errb)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if tt.wantErr != "" && (!strings.Contains(errb.String(), tt.wantErr) || strings.Count(strings.TrimSpace(errb.String()), "\n") > 1) {
				t.Errorf("stderr %q, want one line with %q", errb, tt.wantErr)
			}
		})
	}
}
