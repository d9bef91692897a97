package tap

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
	"github.com/metropolis-dev/metro/internal/stream"
)

// accessParts reads the parts the gateway's access log counted for a
// path: what the gateway's own stream reader saw, to hold tap's count to.
func accessParts(t *testing.T, log, path string) int {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var e struct {
			Path  string `json:"path"`
			Parts int    `json:"parts"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Path == path {
			return e.Parts
		}
	}
	t.Fatalf("no access log line for %s in %s", path, log)
	return 0
}

// TestStreamsLive: streamed exchanges through a real gateway and SDK
// worker, under a prefix (so tap's subscription to the stream space is
// its own), each show in tap as one exchange with its whole size, its
// parts as the gateway counted them, and how it ended.
func TestStreamsLive(t *testing.T) {
	const prefix = "api"
	ns := natstest.Run(t)
	big := metrotest.Bytes(5 << 20)
	upload := metrotest.Bytes(3<<20 + 11)
	events := []string{"data: one\n\n", "data: two\n\n", "data: three\n\n"}
	seen := make(chan struct{})
	metrotest.StartWorker(t, ns.ClientURL(), "files", metrotest.Routes(map[string]http.HandlerFunc{
		"GET /big": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(big)
		},
		"GET /events": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			rc := http.NewResponseController(w)
			for i, ev := range events {
				io.WriteString(w, ev)
				rc.Flush()
				if i == 0 {
					// The rest waits for the client to have the first
					// event: the first part is then surely before the end.
					select {
					case <-seen:
					case <-r.Context().Done():
						return
					}
				}
			}
		},
		"GET /broken": func(w http.ResponseWriter, r *http.Request) {
			w.Write(big[:1<<20])
			panic(http.ErrAbortHandler)
		},
		"POST /upload": func(w http.ResponseWriter, r *http.Request) {
			n, err := io.Copy(io.Discard, r.Body)
			fmt.Fprint(w, n, err)
		},
	}), metro.WithPrefix(prefix))
	var access metrotest.LockedBuffer
	gw, srv := metrotest.StartGateway(t, natstest.Connect(t, ns), proxy.Config{
		Prefix: prefix, Timeout: time.Minute, MaxBody: 16 << 20,
		AccessLog: slog.New(slog.NewJSONHandler(&access, nil)),
	})
	metrotest.WaitRoutes(t, gw, "GET /big", "GET /events", "GET /broken", "POST /upload")

	in, err := Subscribe(natstest.Connect(t, ns), prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := runIntake(t, in, 16)
	next := func(t *testing.T, path string) Exchange {
		t.Helper()
		select {
		case ex := <-got:
			if ex.Path != path {
				t.Fatalf("exchange of %s, want %s", ex.Path, path)
			}
			return ex
		case <-time.After(time.Minute):
			t.Fatalf("tap saw no exchange of %s", path)
		}
		return Exchange{}
	}
	noOther := func(t *testing.T) {
		t.Helper()
		select {
		case ex := <-got:
			t.Fatalf("another exchange: %s %s on %s", ex.Method, ex.Path, ex.Subject)
		default:
		}
	}

	t.Run("a 5 MiB reply", func(t *testing.T) {
		resp, body := metrotest.Do(t, must(http.NewRequest("GET", srv.URL+"/big", nil)))
		if resp.StatusCode != 200 || body != string(big) {
			t.Fatalf("client got %d, %d bytes", resp.StatusCode, len(body))
		}
		ex := next(t, "/big")
		noOther(t)
		if ex.Outcome != OK || ex.Status != 200 || ex.Broken() || ex.Streamed() != "reply" {
			t.Fatalf("outcome %v status %d broken %q streamed %q", ex.Outcome, ex.Status, ex.StreamError, ex.Streamed())
		}
		if ex.Response.Size != len(big) {
			t.Errorf("reply size %d, want %d", ex.Response.Size, len(big))
		}
		if want := accessParts(t, access.String(), "/big"); ex.Response.Parts != want || want < len(big)/stream.MaxPart+1 {
			t.Errorf("reply parts %d, the gateway read %d", ex.Response.Parts, want)
		}
		if !bytes.Equal(ex.Response.Body, big[:MaxBody]) {
			t.Errorf("the body kept for display is not the reply's first %d bytes", MaxBody)
		}
		if ex.FirstPart <= 0 || ex.FirstPart > ex.Latency {
			t.Errorf("first part after %v, end after %v", ex.FirstPart, ex.Latency)
		}
		rec := recordJSON(t, ex)
		if rec["stream"] != "reply" || rec["reply_parts"] != float64(ex.Response.Parts) || rec["reply_bytes"] != float64(len(big)) ||
			rec["first_part_ms"] == nil || rec["end_ms"] != rec["latency_ms"] || rec["broken"] != nil {
			t.Errorf("NDJSON record %v", rec)
		}
	})

	t.Run("flushed events", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		if line, err := br.ReadString('\n'); err != nil || line != "data: one\n" {
			t.Fatalf("first event %q, %v", line, err)
		}
		close(seen)
		rest, err := io.ReadAll(br)
		if err != nil || string(rest) != strings.Join(events, "")[len("data: one\n"):] {
			t.Fatalf("rest of the events %q, %v", rest, err)
		}
		ex := next(t, "/events")
		noOther(t)
		all := strings.Join(events, "")
		if ex.Response.Size != len(all) || string(ex.Response.Body) != all || ex.Broken() {
			t.Fatalf("reply %q (%d bytes) broken %q, want %q", ex.Response.Body, ex.Response.Size, ex.StreamError, all)
		}
		if want := accessParts(t, access.String(), "/events"); ex.Response.Parts != want || want != len(events)+1 {
			t.Errorf("reply parts %d, the gateway read %d; want one message per flush and the end", ex.Response.Parts, want)
		}
		if ex.FirstPart >= ex.Latency {
			t.Errorf("first part after %v, end after %v: the end waited for the client", ex.FirstPart, ex.Latency)
		}
	})

	t.Run("a stream that breaks", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/broken")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Errorf("the client read a broken stream to a clean end")
		}
		resp.Body.Close()
		ex := next(t, "/broken")
		noOther(t)
		if !ex.Broken() || !strings.Contains(ex.StreamError, "panicked") || !ex.Failed() {
			t.Fatalf("broken %v (%q), failed %v", ex.Broken(), ex.StreamError, ex.Failed())
		}
		if ex.Response.Size > 1<<20 || ex.Response.Parts < 2 {
			t.Errorf("reply %d bytes in %d parts", ex.Response.Size, ex.Response.Parts)
		}
		if rec := recordJSON(t, ex); rec["broken"] != true || rec["stream_error"] != ex.StreamError {
			t.Errorf("NDJSON record %v", rec)
		}
	})

	t.Run("a streamed request body", func(t *testing.T) {
		resp, body := metrotest.Do(t, must(http.NewRequest("POST", srv.URL+"/upload", bytes.NewReader(upload))))
		if resp.StatusCode != 200 || body != fmt.Sprint(len(upload), nil) {
			t.Fatalf("client got %d %q", resp.StatusCode, body)
		}
		ex := next(t, "/upload")
		noOther(t)
		if ex.Streamed() != "request" || ex.Broken() || ex.Request.Size != len(upload) || ex.Request.Parts < len(upload)/stream.MaxPart+1 {
			t.Fatalf("streamed %q broken %q request %d bytes in %d parts", ex.Streamed(), ex.StreamError, ex.Request.Size, ex.Request.Parts)
		}
	})
}

// recordJSON is ex's NDJSON line as a JSON decoder reads it.
func recordJSON(t *testing.T, ex Exchange) map[string]any {
	t.Helper()
	b, err := json.Marshal(NewRecord(ex))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
