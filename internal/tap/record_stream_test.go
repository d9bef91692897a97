package tap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/mock"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
	"github.com/metropolis-dev/metro/internal/recording"
	"github.com/metropolis-dev/metro/internal/replay"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestRecordStreams: tap --record writes a streamed body whole up to its
// limit and as its length and digest past it; replay compares a reply by
// that digest and refuses to resend a body it does not have; a mock
// answers a streamed reply as the worker did, breaks where the recorded
// stream broke, and says plainly what it cannot answer.
func TestRecordStreams(t *testing.T) {
	ns := natstest.Run(t)
	medium := metrotest.Bytes(700 << 10) // streams, under the limit below
	big := metrotest.Bytes(5 << 20)      // streams, over it
	upload := metrotest.Bytes(3 << 20)
	const limit = 1 << 20
	stopWorker := metrotest.StartWorker(t, ns.ClientURL(), "files", metrotest.Routes(map[string]http.HandlerFunc{
		"GET /ping": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "pong") },
		"GET /medium": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(medium)
		},
		"GET /big": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(big)
		},
		"GET /broken": func(w http.ResponseWriter, r *http.Request) {
			w.Write(big[:1<<20])
			panic(http.ErrAbortHandler)
		},
		"POST /upload": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprint(w, len(b), " ", sha(b))
		},
	}))
	gw, srv := metrotest.StartGateway(t, natstest.Connect(t, ns), proxy.Config{Timeout: time.Minute, MaxBody: 16 << 20})
	metrotest.WaitRoutes(t, gw, "GET /ping", "GET /medium", "GET /big", "GET /broken", "POST /upload")

	in, err := Subscribe(natstest.Connect(t, ns), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "rec.ndjson")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	// Closed after the intake has stopped and flushed its recorder: the
	// cleanups of runIntake, registered later, run first.
	t.Cleanup(func() { f.Close() })
	in.SetRecorder(NewFileRecorder(f, nil))
	in.SetRecordMaxStream(limit)
	got := runIntake(t, in, 64)

	get := func(path string) (*http.Response, []byte, error) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	// Tap names the worker once discovery has answered; a mock serves
	// only what the recording says its worker answered.
	for deadline := time.Now().Add(20 * time.Second); ; {
		get("/ping")
		if ex := <-got; ex.Worker == "files" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tap never named the worker")
		}
	}
	for _, p := range []string{"/medium", "/big"} {
		if resp, _, err := get(p); resp.StatusCode != 200 || err != nil {
			t.Fatalf("GET %s: %d %v", p, resp.StatusCode, err)
		}
		<-got
	}
	if _, _, err := get("/broken"); err == nil {
		t.Fatal("GET /broken read to a clean end")
	}
	<-got
	resp, err := http.Post(srv.URL+"/upload", "application/octet-stream", bytes.NewReader(upload))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /upload: %v %v", resp, err)
	}
	resp.Body.Close()
	if ex := <-got; ex.Streamed() != "request" {
		t.Fatalf("the upload did not stream: %+v", ex.Request)
	}

	// The intake flushes its recorder every sweep.
	var exs []recording.Exchange
	for deadline := time.Now().Add(20 * time.Second); ; {
		exs, err = recording.ReadFile(file)
		if err == nil && exs[len(exs)-1].Path == "/upload" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the recording: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	byPath := map[string]recording.Exchange{}
	for _, ex := range exs {
		byPath[ex.Path] = ex
	}
	if m := byPath["/medium"].Reply; !bytes.Equal(m.Body, medium) || m.Omitted != nil || m.Parts < 2 {
		t.Errorf("/medium recorded as %d bytes in %d parts, omitted %v", len(m.Body), m.Parts, m.Omitted)
	}
	if m := byPath["/big"].Reply; len(m.Body) != 0 || m.Omitted == nil || *m.Omitted != (recording.Omitted{Length: len(big), SHA256: sha(big)}) {
		t.Errorf("/big recorded as %d bytes, omitted %v; want its length and digest", len(m.Body), m.Omitted)
	}
	if m := byPath["/upload"].Request; m.Omitted == nil || *m.Omitted != (recording.Omitted{Length: len(upload), SHA256: sha(upload)}) {
		t.Errorf("/upload request recorded omitted %v; want its length and digest", m.Omitted)
	}
	if ex := byPath["/broken"]; !strings.Contains(ex.StreamError, "panicked") {
		t.Errorf("/broken recorded with stream_error %q", ex.StreamError)
	}

	t.Run("replay", func(t *testing.T) {
		var out bytes.Buffer
		sum, err := replay.Run(t.Context(), replay.Options{File: file, Gateway: srv.URL, Out: &out, JSON: true, Filters: []string{"GET /medium", "GET /big", "GET /broken", "POST /upload"}})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Matched != 2 || sum.Failed != 1 || sum.Skipped != 1 || sum.Differed != 0 {
			t.Errorf("replay: %v\n%s", sum, out.String())
		}
		if !strings.Contains(out.String(), "request body was not recorded") || !strings.Contains(out.String(), "broke mid-stream") {
			t.Errorf("replay does not say why:\n%s", out.String())
		}
	})

	t.Run("mock", func(t *testing.T) {
		stopWorker()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- mock.Run(ctx, mock.Options{Worker: "files", File: file, URL: ns.ClientURL(), Logger: slog.New(slog.DiscardHandler)})
		}()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("mock: %v", err)
			}
		}()
		// The routes are known to the gateway still; wait until the mock
		// answers them.
		for deadline := time.Now().Add(20 * time.Second); ; {
			if resp, b, _ := get("/ping"); resp.StatusCode == 200 && string(b) == "pong" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the mock does not answer")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if resp, b, err := get("/medium"); resp.StatusCode != 200 || err != nil || !bytes.Equal(b, medium) {
			t.Errorf("mocked /medium: %d, %d bytes, %v", resp.StatusCode, len(b), err)
		}
		if resp, b, _ := get("/big"); resp.StatusCode != 500 || !strings.Contains(string(b), "--record-max-stream") {
			t.Errorf("mocked /big: %d %s", resp.StatusCode, b)
		}
		if resp, b, err := get("/broken"); resp.StatusCode != 200 || err == nil || len(b) > 1<<20 {
			t.Errorf("mocked /broken: %d, %d bytes, %v; want a body cut short", resp.StatusCode, len(b), err)
		}
		resp, err := http.Post(srv.URL+"/upload", "application/octet-stream", bytes.NewReader(upload))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprint(len(upload), " ", sha(upload)); resp.StatusCode != 200 || string(b) != want {
			t.Errorf("mocked /upload (matched by digest): %d %q, want %q", resp.StatusCode, b, want)
		}
	})
}
