package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natsconn"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
	"github.com/metropolis-dev/metro/internal/wire"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// A reply of 20 MiB, twenty times what one NATS message may hold, reaches
// the client whole and byte for byte, chunked.
func TestStreamedReplyWhole(t *testing.T) {
	e := newEnv(t, proxy.Config{})
	body := metrotest.Bytes(20<<20 + 17)
	e.worker("files", map[string]http.HandlerFunc{
		"GET /files/big": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			for p := body; len(p) > 0; {
				n := min(len(p), 100_000)
				if _, err := w.Write(p[:n]); err != nil {
					return
				}
				p = p[n:]
			}
		},
	})
	resp, got := e.do("GET", "/files/big", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %.200s", resp.StatusCode, got)
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("transfer encoding %v, want chunked", resp.TransferEncoding)
	}
	if got := []byte(got); !bytes.Equal(got, body) {
		t.Fatalf("got %d bytes (sha %s), want %d (sha %s)", len(got), sum(got), len(body), sum(body))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type %q", ct)
	}
}

// uploadWorker answers the length and digest of the body it read.
func uploadWorker(e *env) {
	e.worker("uploads", map[string]http.HandlerFunc{
		"POST /uploads": func(w http.ResponseWriter, r *http.Request) {
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%d %x %d", n, h.Sum(nil), r.ContentLength)
		},
	})
}

// onlyReader hides a body's length, so the client sends it chunked.
type onlyReader struct{ io.Reader }

// A 20 MiB upload reaches the worker byte for byte, with its length known
// or chunked.
func TestStreamedUploadWhole(t *testing.T) {
	e := newEnv(t, proxy.Config{MaxBody: 64 << 20})
	uploadWorker(e)
	body := metrotest.Bytes(20<<20 + 5)
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			var rb io.Reader = bytes.NewReader(body)
			wantLength := len(body)
			if chunked {
				rb, wantLength = onlyReader{rb}, -1
			}
			req, _ := http.NewRequest("POST", e.srv.URL+"/uploads", rb)
			resp, got := metrotest.Do(t, req)
			want := fmt.Sprintf("%d %s %d", len(body), sum(body), wantLength)
			if resp.StatusCode != 200 || got != want {
				t.Fatalf("status %d, worker read %q, want %q", resp.StatusCode, got, want)
			}
		})
	}
}

// A body over max_body is 413 whether its length is announced or not,
// though the worker reads streamed bodies.
func TestStreamedUploadOverMaxBody(t *testing.T) {
	e := newEnv(t, proxy.Config{MaxBody: 3 << 20})
	uploadWorker(e)
	body := metrotest.Bytes(4 << 20)
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			var rb io.Reader = bytes.NewReader(body)
			if chunked {
				rb = onlyReader{rb}
			}
			req, _ := http.NewRequest("POST", e.srv.URL+"/uploads", rb)
			resp, got := metrotest.Do(t, req)
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(got, "too large") {
				t.Fatalf("status %d: %s", resp.StatusCode, got)
			}
			if ct := resp.Header.Get("Content-Type"); ct != wire.ProblemContentType {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// Server-sent events reach the client one by one, each as the handler
// flushes it: the handler writes event k+1 only once the client has read
// event k, so a gateway that held the reply until the handler returned
// would never answer.
func TestServerSentEventsArriveOneByOne(t *testing.T) {
	e := newEnv(t, proxy.Config{})
	const events = 5
	read := make(chan int)
	written := make(chan time.Time, events)
	e.worker("feed", map[string]http.HandlerFunc{
		"GET /feed": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			rc := http.NewResponseController(w)
			for k := range events {
				fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", k, k)
				if err := rc.Flush(); err != nil {
					t.Errorf("flush: %v", err)
					return
				}
				written <- time.Now()
				select {
				case <-read:
				case <-r.Context().Done():
					return
				}
			}
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp := getFeed(ctx, t, e)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	for k := range events {
		var ev []string
		for sc.Scan() && sc.Text() != "" {
			ev = append(ev, sc.Text())
		}
		if want := []string{"id: " + strconv.Itoa(k), "data: event " + strconv.Itoa(k)}; strings.Join(ev, "|") != strings.Join(want, "|") {
			t.Fatalf("event %d = %q (scan: %v), want %q", k, ev, sc.Err(), want)
		}
		at := <-written
		t.Logf("event %d reached the client %v after the handler flushed it", k, time.Since(at))
		read <- k
	}
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Fatalf("after the events: %q, %v; want a clean end", rest, err)
	}
}

// A client that disconnects mid-stream ends the handler's context.
func TestClientDisconnectCancelsHandler(t *testing.T) {
	e := newEnv(t, proxy.Config{})
	cancelled := make(chan error, 1)
	e.worker("feed", map[string]http.HandlerFunc{
		"GET /feed": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "data: hello\n\n")
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
			cancelled <- r.Context().Err()
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	resp := getFeed(ctx, t, e)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: hello\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel()
	resp.Body.Close()
	// The route's timeout (30s) would end the handler too: it must end
	// long before, because the client went away.
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler context ended with %v, want cancelled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the handler's context did not end when its client disconnected")
	}
}

// A worker that dies mid-stream ends the response visibly incomplete: the
// client gets no terminating chunk, and the gateway logs it.
func TestWorkerDiesMidStream(t *testing.T) {
	var logs metrotest.LockedBuffer
	e := newEnv(t, proxy.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	wc := natstest.Connect(t, e.ns)
	sent, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	e.worker("feed", map[string]http.HandlerFunc{
		"GET /feed": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "data: first\n\n")
			http.NewResponseController(w).Flush()
			close(sent)
			<-release
		},
	}, metro.WithConn(wc))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp := getFeed(ctx, t, e)
	defer resp.Body.Close()
	<-sent
	wc.Close() // as the worker's process dying: its subscriptions are gone
	got, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read %q then %v; want the body cut short (unexpected EOF)", got, err)
	}
	if string(got) != "data: first\n\n" {
		t.Errorf("got %q before the end", got)
	}
	if ctx.Err() != nil {
		t.Fatal("the client waited for its own deadline")
	}
	if !natsconn.Poll(ctx, time.Minute, func() bool { return strings.Contains(logs.String(), "streamed reply broke") }) {
		t.Errorf("the gateway did not log the broken stream: %s", logs.String())
	}
}

// A worker that speaks only one message each way (protocol version 2 or
// older: any plain NATS subscriber) is still served: it gets the request
// body whole in the message, never a stream, and its one reply is the
// response.
func TestSingleMessageWorkerStillServed(t *testing.T) {
	e := newEnv(t, proxy.Config{Routes: []proxy.RouteConfig{{Match: "POST /plain"}}})
	var mu sync.Mutex
	var seen *nats.Msg
	e.responder("plain.POST", func(m *nats.Msg) {
		mu.Lock()
		seen = m
		mu.Unlock()
		m.RespondMsg(&nats.Msg{Header: nats.Header{"Content-Type": {"text/plain"}}, Data: []byte(sum(m.Data))})
	})
	body := metrotest.Bytes(700 << 10) // over half a message: it would stream to a version-3 worker
	req, _ := http.NewRequest("POST", e.srv.URL+"/plain", onlyReader{bytes.NewReader(body)})
	resp, got := metrotest.Do(t, req)
	if resp.StatusCode != 200 || got != sum(body) {
		t.Fatalf("status %d, body %q", resp.StatusCode, got)
	}
	mu.Lock()
	defer mu.Unlock()
	if s := seen.Header.Get(wire.HeaderStream); s != "" {
		t.Errorf("a single-message worker was sent a stream: %s", s)
	}
	if v := seen.Header.Get(wire.HeaderVersion); v != wire.Version {
		t.Errorf("Metro-Version %q", v)
	}
}

// HEAD on a route whose GET streams gets the GET's status and headers,
// and no body; the worker's stream is cancelled, not read.
func TestStreamedReplyToHead(t *testing.T) {
	e := newEnv(t, proxy.Config{})
	cancelled := make(chan struct{})
	e.worker("files", map[string]http.HandlerFunc{
		"GET /files/feed": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: one\n\n")
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
			close(cancelled)
		},
	})
	resp, body := e.do("HEAD", "/files/feed", "", nil)
	if resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("HEAD: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	select {
	case <-cancelled:
	case <-time.After(20 * time.Second):
		t.Fatal("the handler's stream was not cancelled after the HEAD answer")
	}
}

// An event that follows an idle spell (in which the gateway pinged the
// worker and got its pong) still reaches the client when the handler
// flushes it, not with the next one.
func TestEventAfterIdleArrives(t *testing.T) {
	e := newEnv(t, proxy.Config{})
	seen := make(chan struct{})
	e.worker("feed", map[string]http.HandlerFunc{
		"GET /feed": func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			io.WriteString(w, "data: first\n\n")
			rc.Flush()
			time.Sleep(3 * time.Second) // idle: the gateway pings, the worker answers
			io.WriteString(w, "data: second\n\n")
			rc.Flush()
			select { // the stream stays open until the client has the event
			case <-seen:
			case <-r.Context().Done():
			}
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp := getFeed(ctx, t, e)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for _, want := range []string{"data: first\n", "\n", "data: second\n"} {
		if line, err := br.ReadString('\n'); err != nil || line != want {
			t.Fatalf("read %q, %v; want %q", line, err, want)
		}
	}
	close(seen)
}

// getFeed sends GET /feed through e's gateway, bound to ctx, and returns
// the response, its body still to read.
func getFeed(ctx context.Context, t *testing.T, e *env) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/feed", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
