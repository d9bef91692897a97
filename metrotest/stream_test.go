package metrotest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/metropolis-dev/metro/internal/recording"
	"github.com/metropolis-dev/metro/metrotest"
)

// TestStreamedRecordings: a reply recorded by its digest replays by its
// digest; a reply whose stream broke is not replayed, and a mock of it
// gives the bytes that crossed and then an error, never a whole body.
func TestStreamedRecordings(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	sum := sha256.Sum256(big)
	var buf bytes.Buffer
	w := recording.NewWriter(&buf, nil)
	w.Write(recording.Exchange{Subject: "files.big.GET", Method: "GET", Path: "/files/big", Worker: "files", Outcome: "ok", Status: 200,
		Reply: &recording.Message{Header: http.Header{"Content-Type": {"application/octet-stream"}}, Parts: 17, Omitted: &recording.Omitted{Length: len(big), SHA256: hex.EncodeToString(sum[:])}}})
	w.Write(recording.Exchange{Subject: "files.cut.GET", Method: "GET", Path: "/files/cut", Worker: "files", Outcome: "ok", Status: 200,
		StreamError: "the streamed reply body did not end: the handler panicked",
		Reply:       &recording.Message{Parts: 2, Body: []byte("the start")}})
	w.Flush()
	file := filepath.Join(t.TempDir(), "rec.ndjson")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	files := http.NewServeMux()
	files.HandleFunc("GET /files/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(big)
	})
	files.HandleFunc("GET /files/cut", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "whole, this time") })
	metrotest.Replay(t, files, file)

	client := metrotest.Mock(t, file, "files")
	req, _ := http.NewRequest("GET", "metro:///files/cut", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if string(b) != "the start" || err == nil {
		t.Fatalf("mocked broken reply read %q, %v; want its start, then an error", b, err)
	}
}
