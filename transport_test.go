package metro_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/wire"
)

// The helpers of this file carry a "callee"/"transport" flavour in their
// names: other test files of package metro_test define their own.

// calleeWorker returns a worker on url with logs discarded, not yet running.
func calleeWorker(url, name string, opts ...metro.Option) *metro.Worker {
	opts = append([]metro.Option{metro.WithNATSURL(url), metro.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	return metro.NewWorker(name, opts...)
}

// runCallee runs w until the test ends and returns once it is ready. The
// returned stop function cancels Run and waits for it (also at cleanup).
func runCallee(t testing.TB, w *metro.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() { defer close(done); runErr = w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			if runErr != nil {
				t.Errorf("worker Run: %v", runErr)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-w.Ready():
	case <-done:
		t.Fatalf("worker stopped before it was ready: %v", runErr)
	case <-time.After(10 * time.Second):
		t.Fatal("worker not ready after 10s")
	}
	return stop
}

// echoed is what echoHandler saw of a request.
type echoed struct {
	Method      string
	Path        string
	EscapedPath string
	PathValue   string
	Query       string
	Header      http.Header
	Body        []byte
	RequestID   string
}

// echoHandler answers with what it saw, headers X-Reply: one, two, and the
// status asked for in X-Want-Status (default 200).
func echoHandler(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e := echoed{
		Method:      r.Method,
		Path:        r.URL.Path,
		EscapedPath: r.URL.EscapedPath(),
		PathValue:   r.PathValue("path"),
		Query:       r.URL.RawQuery,
		Header:      r.Header,
		Body:        body,
		RequestID:   metro.RequestID(r),
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Add("X-Reply", "one")
	w.Header().Add("X-Reply", "two")
	status := http.StatusOK
	if s := r.Header.Get("X-Want-Status"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		status = n
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(e)
}

func decodeEcho(t *testing.T, resp *http.Response) echoed {
	t.Helper()
	var e echoed
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("decoding echo: %v", err)
	}
	return e
}

func TestTransportRoundTrip(t *testing.T) {
	s := natstest.Run(t)
	files := calleeWorker(s.ClientURL(), "files")
	for _, m := range []string{"GET", "POST", "PUT", "DELETE", "PATCH"} {
		files.HandleFunc(m+" /files/{path...}", echoHandler)
	}
	runCallee(t, files)
	shop := calleeWorker(s.ClientURL(), "shop-files", metro.WithPrefix("shop"))
	shop.HandleFunc("GET /files/{path...}", echoHandler)
	runCallee(t, shop)

	client := &http.Client{Transport: &metro.Transport{Conn: natstest.Connect(t, s)}}
	prefixed := &http.Client{Transport: &metro.Transport{Conn: natstest.Connect(t, s), Prefix: "shop"}}

	tests := []struct {
		name   string
		client *http.Client
		method string
		url    string
		header http.Header
		body   string

		wantStatus int
		want       echoed // Header is checked key by key
	}{
		{
			name:   "reserved bytes in path, query, repeated headers",
			method: "GET",
			url:    "metro:///files/a%2Fb/c%20d?x=1&y=%2F&x=2",
			header: http.Header{"X-Multi": {"a", "b"}, "Accept": {"text/plain"}},
			want: echoed{Method: "GET", Path: "/files/a/b/c d", EscapedPath: "/files/a%2Fb/c%20d", PathValue: "a/b/c d",
				Query: "x=1&y=%2F&x=2", Header: http.Header{"X-Multi": {"a", "b"}, "Accept": {"text/plain"}}},
			wantStatus: 200,
		},
		{
			name:   "body and status",
			method: "POST",
			url:    "metro:///files/upload.bin",
			header: http.Header{"Content-Type": {"application/octet-stream"}, "X-Want-Status": {"201"}},
			body:   "hello\x00world\n\xff",
			want: echoed{Method: "POST", Path: "/files/upload.bin", EscapedPath: "/files/upload.bin", PathValue: "upload.bin",
				Header: http.Header{"Content-Type": {"application/octet-stream"}}, Body: []byte("hello\x00world\n\xff")},
			wantStatus: 201,
		},
		{
			name:   "unicode and percent",
			method: "PUT",
			url:    "metro:///files/%E2%82%AC/100%25?q=%E2%82%AC",
			body:   "{}",
			want: echoed{Method: "PUT", Path: "/files/€/100%", EscapedPath: "/files/%E2%82%AC/100%25", PathValue: "€/100%",
				Query: "q=%E2%82%AC", Body: []byte("{}")},
			wantStatus: 200,
		},
		{
			name:       "error status with a body",
			method:     "DELETE",
			url:        "metro:///files/x",
			header:     http.Header{"X-Want-Status": {"409"}},
			want:       echoed{Method: "DELETE", Path: "/files/x", EscapedPath: "/files/x", PathValue: "x"},
			wantStatus: 409,
		},
		{
			name:       "host names the prefix",
			method:     "GET",
			url:        "metro://shop/files/in/shop",
			want:       echoed{Method: "GET", Path: "/files/in/shop", EscapedPath: "/files/in/shop", PathValue: "in/shop"},
			wantStatus: 200,
		},
		{
			name:       "Transport.Prefix for metro:///",
			client:     prefixed,
			method:     "GET",
			url:        "metro:///files/via/prefix",
			want:       echoed{Method: "GET", Path: "/files/via/prefix", EscapedPath: "/files/via/prefix", PathValue: "via/prefix"},
			wantStatus: 200,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.client
			if c == nil {
				c = client
			}
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, tt.url, body)
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range tt.header {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tt.method, tt.url, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if want := http.StatusText(tt.wantStatus); !strings.HasSuffix(resp.Status, want) {
				t.Errorf("Status = %q, want it to end in %q", resp.Status, want)
			}
			if got := resp.Header.Values("X-Reply"); len(got) != 2 || got[0] != "one" || got[1] != "two" {
				t.Errorf("X-Reply = %q, want [one two]", got)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			for k := range resp.Header {
				if strings.HasPrefix(k, "Metro-") || strings.HasPrefix(k, "Nats-") {
					t.Errorf("response carries protocol header %s", k)
				}
			}
			rid := resp.Header.Get("X-Request-Id")
			if !wire.ValidRequestID(rid) {
				t.Errorf("X-Request-Id = %q", rid)
			}
			got := decodeEcho(t, resp)
			if resp.ContentLength < 0 {
				t.Errorf("ContentLength = %d", resp.ContentLength)
			}
			if got.Method != tt.want.Method || got.Path != tt.want.Path || got.EscapedPath != tt.want.EscapedPath ||
				got.PathValue != tt.want.PathValue || got.Query != tt.want.Query || !bytes.Equal(got.Body, tt.want.Body) {
				t.Errorf("callee saw\n %+v\nwant\n %+v", got, tt.want)
			}
			for k, want := range tt.want.Header {
				if g := got.Header[k]; strings.Join(g, "\x00") != strings.Join(want, "\x00") {
					t.Errorf("callee header %s = %q, want %q", k, g, want)
				}
			}
			if got.RequestID != rid {
				t.Errorf("callee request id %q, response X-Request-Id %q", got.RequestID, rid)
			}
			if got.Header.Get("Metro-Version") != wire.Version {
				t.Errorf("Metro-Version = %q", got.Header.Get("Metro-Version"))
			}
		})
	}
}

// TestTransportPathsLikeNetHTTP serves the same handler over the Transport
// and over a real HTTP server: the handler must see the same path, escaped
// path and path value either way.
func TestTransportPathsLikeNetHTTP(t *testing.T) {
	s := natstest.Run(t)
	w := calleeWorker(s.ClientURL(), "paths")
	w.HandleFunc("GET /p/{path...}", echoHandler)
	runCallee(t, w)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /p/{path...}", echoHandler)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &metro.Transport{Conn: natstest.Connect(t, s)}}

	for _, p := range []string{
		"/p/plain",
		"/p/a%2Fb/c%20d",
		"/p/%E2%82%AC",
		"/p/a+b",
		"/p/semi;colon",
		"/p/100%25",
		"/p/x%3Fy%23z",
		"/p/dot.name/under_score~tilde",
		"/p/%7Bbraces%7D",
		"/p/trailing/",
	} {
		t.Run(p, func(t *testing.T) {
			get := func(c *http.Client, u string) echoed {
				resp, err := c.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("GET %s: %s", u, resp.Status)
				}
				return decodeEcho(t, resp)
			}
			viaNATS := get(client, "metro://"+p)
			viaHTTP := get(srv.Client(), srv.URL+p)
			if viaNATS.Path != viaHTTP.Path || viaNATS.PathValue != viaHTTP.PathValue {
				t.Errorf("over NATS: path %q value %q; over HTTP: path %q value %q",
					viaNATS.Path, viaNATS.PathValue, viaHTTP.Path, viaHTTP.PathValue)
			}
			// Escaping may be normalised (the subject is the truth), but it
			// must mean the same path.
			nu, err1 := url.PathUnescape(viaNATS.EscapedPath)
			hu, err2 := url.PathUnescape(viaHTTP.EscapedPath)
			if err1 != nil || err2 != nil || nu != hu || strings.Count(viaNATS.EscapedPath, "/") != strings.Count(viaHTTP.EscapedPath, "/") {
				t.Errorf("escaped path over NATS %q, over HTTP %q", viaNATS.EscapedPath, viaHTTP.EscapedPath)
			}
		})
	}
}

// TestTransportRedirect: http.Client follows a worker's redirect through
// the Transport, resolving the Location against the metro: URL.
func TestTransportRedirect(t *testing.T) {
	s := natstest.Run(t)
	w := calleeWorker(s.ClientURL(), "moves")
	w.HandleFunc("GET /old", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/new?from=old", http.StatusTemporaryRedirect)
	})
	w.HandleFunc("GET /new", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "new "+r.URL.RawQuery)
	})
	runCallee(t, w)
	client := &http.Client{Transport: &metro.Transport{Conn: natstest.Connect(t, s)}}
	resp, err := client.Get("metro:///old")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "new from=old" {
		t.Errorf("got %s %q, want 200 %q", resp.Status, b, "new from=old")
	}
	if got := resp.Request.URL.String(); got != "metro:///new?from=old" {
		t.Errorf("final URL %q", got)
	}
}

// TestTransportHead: a HEAD answer has no body, as over HTTP, though the
// GET handler that serves it writes one.
func TestTransportHead(t *testing.T) {
	s := natstest.Run(t)
	w := calleeWorker(s.ClientURL(), "heads")
	w.HandleFunc("GET /h", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Method", r.Method)
		io.WriteString(w, "body!")
	})
	runCallee(t, w)
	client := &http.Client{Transport: &metro.Transport{Conn: natstest.Connect(t, s)}}
	for _, tt := range []struct{ method, body string }{{"HEAD", ""}, {"GET", "body!"}} {
		req, _ := http.NewRequestWithContext(t.Context(), tt.method, "metro:///h", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(b) != tt.body || resp.Header.Get("X-Method") != tt.method || resp.ContentLength != 5 {
			t.Errorf("%s: %s X-Method %q length %d body %q (%v), want 200 %s 5 %q",
				tt.method, resp.Status, resp.Header.Get("X-Method"), resp.ContentLength, b, err, tt.method, tt.body)
		}
	}
}

// deadlineOf is a handler that reports its context's deadline on ch.
func deadlineOf(ch chan<- time.Time) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, ok := r.Context().Deadline()
		if !ok {
			d = time.Time{}
		}
		ch <- d
		w.WriteHeader(http.StatusNoContent)
	}
}

// sameDeadline: Metro-Deadline has millisecond precision and is truncated,
// so the callee's deadline is the caller's, up to 1ms earlier, never later.
func sameDeadline(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if got.IsZero() {
		t.Errorf("%s: callee has no deadline, want %v", what, want)
		return
	}
	if got.After(want) || want.Sub(got) >= time.Millisecond {
		t.Errorf("%s: callee deadline %v, want %v (-1ms]", what, got.Format(time.StampMicro), want.Format(time.StampMicro))
	}
}

func TestTransportDeadline(t *testing.T) {
	s := natstest.Run(t)
	seen := make(chan time.Time, 1)
	w := calleeWorker(s.ClientURL(), "clock")
	w.HandleFunc("GET /deadline", deadlineOf(seen))
	runCallee(t, w)
	nc := natstest.Connect(t, s)

	call := func(t *testing.T, tr *metro.Transport, ctx context.Context) time.Time {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", "metro:///deadline", nil)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("status %s", resp.Status)
		}
		return <-seen
	}

	t.Run("context deadline", func(t *testing.T) {
		want := time.Now().Add(5 * time.Second)
		ctx, cancel := context.WithDeadline(t.Context(), want)
		defer cancel()
		sameDeadline(t, "ctx", call(t, &metro.Transport{Conn: nc, Timeout: time.Hour}, ctx), want)
	})
	for _, tt := range []struct {
		name    string
		timeout time.Duration
		want    time.Duration
	}{
		{"Transport.Timeout", 7 * time.Second, 7 * time.Second},
		{"default", 0, metro.DefaultCallTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			got := call(t, &metro.Transport{Conn: nc, Timeout: tt.timeout}, t.Context())
			after := time.Now()
			lo, hi := before.Add(tt.want-time.Millisecond), after.Add(tt.want)
			if got.Before(lo) || got.After(hi) {
				t.Errorf("callee deadline %v, want within [%v, %v]", got, lo, hi)
			}
		})
	}
}

// TestTransportDeadlineChain: a handler calling another worker with its
// own request's context can never give the callee more time than it has.
func TestTransportDeadlineChain(t *testing.T) {
	s := natstest.Run(t)
	seen := make(chan time.Time, 1)
	b := calleeWorker(s.ClientURL(), "b")
	b.HandleFunc("GET /deadline", deadlineOf(seen))
	runCallee(t, b)

	type derive func(context.Context) (context.Context, context.CancelFunc)
	cases := []struct {
		name   string
		derive derive
		same   bool // the callee's deadline is the incoming one
	}{
		{"request context", func(ctx context.Context) (context.Context, context.CancelFunc) { return ctx, func() {} }, true},
		{"longer timeout asked", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, time.Hour)
		}, true},
		{"shorter timeout", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 2*time.Second)
		}, false},
	}
	incoming := make(chan time.Time, 1)
	var current derive
	var mu sync.Mutex
	a := calleeWorker(s.ClientURL(), "a")
	a.HandleFunc("GET /relay", func(w http.ResponseWriter, r *http.Request) {
		d, _ := r.Context().Deadline()
		incoming <- d
		mu.Lock()
		derive := current
		mu.Unlock()
		ctx, cancel := derive(r.Context())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "metro:///deadline", nil)
		resp, err := a.Client().Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
	})
	runCallee(t, a)
	client := &http.Client{Transport: &metro.Transport{Conn: natstest.Connect(t, s)}}

	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			current = tt.derive
			mu.Unlock()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "metro:///relay", nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("status %s", resp.Status)
			}
			in, out := <-incoming, <-seen
			if out.IsZero() || out.After(in) {
				t.Errorf("callee deadline %v outlives the incoming %v", out, in)
			}
			if tt.same {
				sameDeadline(t, "chain", out, in)
			}
		})
	}
}

// TestTransportRequestIDChain: A calls B with no gateway in between; B sees
// the request id and trace context of the request A is handling.
func TestTransportRequestIDChain(t *testing.T) {
	s := natstest.Run(t)
	b := calleeWorker(s.ClientURL(), "b")
	b.HandleFunc("GET /b", echoHandler) // no {path}: PathValue is ""
	runCallee(t, b)
	a := calleeWorker(s.ClientURL(), "a")
	a.HandleFunc("GET /a", func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), "GET", "metro:///b", nil)
		resp, err := a.Client().Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("A-Saw", metro.RequestID(r))
		w.Header().Set("A-Saw-B-Answer", resp.Header.Get("X-Request-Id"))
		io.Copy(w, resp.Body)
	})
	runCallee(t, a)
	client := &http.Client{Transport: &metro.Transport{Conn: natstest.Connect(t, s)}}

	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tt := range []struct {
		name      string
		header    http.Header
		wantID    string // "" means a fresh valid id
		wantTrace string
		wantState string
	}{
		{"given id and trace", http.Header{"X-Request-Id": {"order-42:retry/1"}, "Traceparent": {tp}, "Tracestate": {"congo=t61rcWkgMzE"}},
			"order-42:retry/1", tp, "congo=t61rcWkgMzE"},
		{"no id", nil, "", "", ""},
		{"invalid id replaced", http.Header{"X-Request-Id": {"has space"}}, "", "", ""},
		{"trace without state", http.Header{"Traceparent": {tp}}, "", tp, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), "GET", "metro:///a", nil)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %s", resp.Status)
			}
			got := decodeEcho(t, resp)
			rid := resp.Header.Get("X-Request-Id")
			if tt.wantID != "" && rid != tt.wantID {
				t.Errorf("X-Request-Id = %q, want %q", rid, tt.wantID)
			}
			if !wire.ValidRequestID(rid) || (tt.wantID == "" && rid == tt.header.Get("X-Request-Id")) {
				t.Errorf("X-Request-Id = %q, want a fresh id", rid)
			}
			for what, id := range map[string]string{
				"A's request id":         resp.Header.Get("A-Saw"),
				"B's Metro-Request-Id":   got.Header.Get("Metro-Request-Id"),
				"B's metro.RequestID":    got.RequestID,
				"X-Request-Id of B to A": resp.Header.Get("A-Saw-B-Answer"),
			} {
				if id != rid {
					t.Errorf("%s = %q, want %q", what, id, rid)
				}
			}
			if g := got.Header.Get("Traceparent"); g != tt.wantTrace {
				t.Errorf("B's traceparent = %q, want %q", g, tt.wantTrace)
			}
			if g := got.Header.Get("Tracestate"); g != tt.wantState {
				t.Errorf("B's tracestate = %q, want %q", g, tt.wantState)
			}
		})
	}
}

type problemBody struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	RequestID string `json:"request_id"`
}

func TestTransportErrorResponses(t *testing.T) {
	s := natstest.Run(t)
	nc := natstest.Connect(t, s)

	// A plain NATS subscriber answering malformed statuses.
	for subj, status := range map[string]string{"raw.letters.GET": "2xx", "raw.long.GET": "2000", "raw.informational.GET": "101"} {
		sub, err := nc.Subscribe(subj, func(m *nats.Msg) {
			m.RespondMsg(&nats.Msg{Header: nats.Header{"Metro-Status": {status}}, Data: []byte("x")})
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sub.Unsubscribe() })
	}
	// A service built with nats.go micro, knowing nothing of metro.
	svc, err := micro.AddService(nc, micro.Config{Name: "legacy", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop() })
	for subj, h := range map[string]micro.HandlerFunc{
		"legacy.missing.GET": func(r micro.Request) { r.Error("404", "no such thing", nil) },
		"legacy.odd.GET":     func(r micro.Request) { r.Error("42", "odd code", nil) },
		"legacy.body.GET":    func(r micro.Request) { r.Error("409", "conflict", []byte(`{"why":"taken"}`)) },
	} {
		if err := svc.AddEndpoint(strings.ReplaceAll(subj, ".", "-"), h, micro.WithEndpointSubject(subj)); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	slow := calleeWorker(s.ClientURL(), "slow")
	slow.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		// Not done with r.Context(): its deadline is the caller's truncated
		// to the millisecond, so an answer then could beat the caller's timer.
		<-release
	})
	runCallee(t, slow)
	t.Cleanup(func() { close(release) }) // before the worker's cleanup
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	client := &http.Client{Transport: &metro.Transport{Conn: nc, Timeout: 300 * time.Millisecond}}
	tooLong := "metro:///" + strings.Repeat("a/", 65)
	for _, tt := range []struct {
		name       string
		method     string
		url        string
		status     int
		detail     string // substring of the problem's detail; "-" for a non-problem body
		body       string // exact body when detail is "-"
		retryAfter bool
	}{
		{name: "no responders", url: "metro:///nobody/home", status: 503, detail: "no worker", retryAfter: true},
		{name: "slow callee", url: "metro:///slow", status: 504, detail: "timeout"},
		{name: "service error code", url: "metro:///legacy/missing", status: 404, detail: "no such thing"},
		{name: "service error code out of range", url: "metro:///legacy/odd", status: 500, detail: "odd code"},
		{name: "service error with a body", url: "metro:///legacy/body", status: 409, detail: "-", body: `{"why":"taken"}`},
		{name: "Metro-Status not digits", url: "metro:///raw/letters", status: 502, detail: "2xx"},
		{name: "Metro-Status too long", url: "metro:///raw/long", status: 502, detail: "2000"},
		{name: "Metro-Status informational", url: "metro:///raw/informational", status: 502, detail: "101"},
		{name: "dot-dot segment", url: "metro:///a/../b", status: 400},
		{name: "escaped dot-dot segment", url: "metro:///a/%2E%2E/b", status: 400},
		{name: "dot segment", url: "metro:///a/./b", status: 400},
		{name: "method not a token", method: "GET2", url: "metro:///a", status: 405},
		{name: "too many segments", url: tooLong, status: 414},
		{name: "inbox", url: "metro:///_INBOX/x", status: 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			req, err := http.NewRequestWithContext(t.Context(), method, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("want a %d response, got error %v", tt.status, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Get("Retry-After"); (got != "") != tt.retryAfter {
				t.Errorf("Retry-After = %q, want set: %v", got, tt.retryAfter)
			}
			rid := resp.Header.Get("X-Request-Id")
			if !wire.ValidRequestID(rid) {
				t.Errorf("X-Request-Id = %q", rid)
			}
			if tt.detail == "-" {
				if string(body) != tt.body {
					t.Errorf("body %q, want %q", body, tt.body)
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var p problemBody
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("problem body %q: %v", body, err)
			}
			if p.Status != tt.status || p.Type != "about:blank" || p.Title != http.StatusText(tt.status) || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("problem %+v, want status %d and detail containing %q", p, tt.status, tt.detail)
			}
			if p.RequestID != rid {
				t.Errorf("problem request_id %q, X-Request-Id %q", p.RequestID, rid)
			}
		})
	}
}

// TestTransportConcurrent: calls in flight at once on one Transport each
// get their own reply.
func TestTransportConcurrent(t *testing.T) {
	s := natstest.Run(t)
	for range 2 { // two members of one queue group
		w := calleeWorker(s.ClientURL(), "echo")
		w.HandleFunc("POST /files/{path...}", echoHandler)
		runCallee(t, w)
	}
	client := &http.Client{Transport: &metro.Transport{Conn: natstest.Connect(t, s)}}
	const callers, calls = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, callers*calls)
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				name := strconv.Itoa(c) + "-" + strconv.Itoa(i)
				resp, err := client.Post("metro:///files/"+name, "text/plain", strings.NewReader("body "+name))
				if err != nil {
					errs <- err
					return
				}
				var e echoed
				err = json.NewDecoder(resp.Body).Decode(&e)
				resp.Body.Close()
				if err != nil || e.PathValue != name || string(e.Body) != "body "+name {
					errs <- fmt.Errorf("call %s got path %q body %q (%v)", name, e.PathValue, e.Body, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestTransportUnsendable: what NATS itself refuses to carry is answered
// as the gateway answers it: a body over max_payload to a subscriber that
// reads one message per request (no SDK worker: it does not announce that
// it reads streamed bodies) is 413.
func TestTransportUnsendable(t *testing.T) {
	s := natstest.RunWith(t, &server.Options{MaxPayload: 4096})
	plain := natstest.Connect(t, s)
	if _, err := plain.Subscribe("sink.POST", func(m *nats.Msg) { m.Respond(nil) }); err != nil {
		t.Fatal(err)
	}
	plain.Flush()
	nc := natstest.Connect(t, s)
	client := &http.Client{Transport: &metro.Transport{Conn: nc}}

	resp, err := client.Post("metro:///sink", "application/octet-stream", bytes.NewReader(make([]byte, 8192)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("body over max_payload: %s, want 413", resp.Status)
	}
	resp, err = client.Post("metro:///sink", "application/octet-stream", bytes.NewReader(make([]byte, 1024)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("body under max_payload: %s, want 200", resp.Status)
	}

	nc.Close()
	resp, err = client.Post("metro:///sink", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatalf("closed connection: error %v, want a 503 response", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("closed connection: %s Retry-After %q, want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
}

// TestTransportClientErrors: what the caller itself gives up on is an
// error, as with any http.Client, not a response.
func TestTransportClientErrors(t *testing.T) {
	s := natstest.Run(t)
	started := make(chan struct{}, 1)
	gaveUp := make(chan error, 1)
	release := make(chan struct{})
	w := calleeWorker(s.ClientURL(), "sloth")
	w.HandleFunc("GET /sloth", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			gaveUp <- r.Context().Err()
			// Answering now could race the caller's own timer (the callee's
			// deadline is the caller's, truncated to the millisecond), so
			// the reply waits until the test ends.
			<-release
		case <-release:
		}
	})
	runCallee(t, w)
	t.Cleanup(func() { close(release) })
	tr := &metro.Transport{Conn: natstest.Connect(t, s)}
	// The first request waits for the transport's view of the services;
	// one made now leaves the timeouts below to the exchange itself.
	if resp, err := (&http.Client{Transport: tr}).Get("metro:///warm-up"); err == nil {
		resp.Body.Close()
	}
	// recv waits for what the callee reports, failing rather than hanging
	// when the request never reached it.
	recv := func(t *testing.T, what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("the callee never %s", what)
		}
	}

	t.Run("Client.Timeout", func(t *testing.T) {
		c := &http.Client{Transport: tr, Timeout: time.Second}
		resp, err := c.Get("metro:///sloth")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got %s, want a timeout error", resp.Status)
		}
		if !errors.Is(err, context.DeadlineExceeded) && !os.IsTimeout(err) {
			t.Errorf("error %v is not a timeout", err)
		}
		recv(t, "started", started)
		// The callee was told the caller's deadline and gives up too.
		if err := <-gaveUp; !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("callee context ended with %v", err)
		}
	})
	t.Run("context deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "metro:///sloth", nil)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got %s, want an error", resp.Status)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v, want context.DeadlineExceeded", err)
		}
		recv(t, "started", started)
		<-gaveUp
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() { <-started; cancel() }()
		req, _ := http.NewRequestWithContext(ctx, "GET", "metro:///sloth", nil)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got %s, want an error", resp.Status)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})
	t.Run("cancelled before sending", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "metro:///sloth", nil)
		if _, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})
	t.Run("wrong scheme", func(t *testing.T) {
		resp, err := (&http.Client{Transport: tr}).Get("http://127.0.0.1:1/x")
		if err == nil {
			resp.Body.Close()
			t.Fatal("want an error for http://")
		}
		if !strings.Contains(err.Error(), "scheme") {
			t.Errorf("error %v does not name the scheme", err)
		}
	})
}

// TestTransportHostMustBePrefix: the URL host becomes the subject prefix,
// so one that could reach system subjects, reply inboxes or wildcards is
// refused before anything is published.
func TestTransportHostMustBePrefix(t *testing.T) {
	s := natstest.Run(t)
	tr := &metro.Transport{Conn: natstest.Connect(t, s)}
	for _, host := range []string{"$SRV", "$JS.API", "_INBOX", "_inbox.abc", "api.*", ">", "a..b", ".api", "api.", "a>b"} {
		t.Run(host, func(t *testing.T) {
			req := (&http.Request{Method: "GET", URL: &url.URL{Scheme: "metro", Host: host, Path: "/x"}, Header: http.Header{}}).WithContext(t.Context())
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("host %q: got %s, want an error", host, resp.Status)
			}
			if !strings.Contains(err.Error(), "prefix") {
				t.Errorf("error %v does not say why", err)
			}
		})
	}
	// Hosts a gateway could have are fine (no worker: 503).
	for _, host := range []string{"api", "acme.api", "v2-api_x"} {
		resp, err := (&http.Client{Transport: tr}).Get("metro://" + host + "/x")
		if err != nil {
			t.Fatalf("host %q: %v", host, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("host %q: %s, want 503", host, resp.Status)
		}
	}
}

func TestWorkerClientNotRunning(t *testing.T) {
	s := natstest.Run(t)
	w := calleeWorker(s.ClientURL(), "idle")
	w.HandleFunc("GET /idle", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "awake") })
	get := func() (string, error) {
		resp, err := w.Client().Get("metro:///idle")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if _, err := get(); !errors.Is(err, metro.ErrNotRunning) {
		t.Fatalf("before Run: error %v, want ErrNotRunning", err)
	}
	var ue *url.Error
	if _, err := get(); !errors.As(err, &ue) {
		t.Errorf("before Run: error %T is not the http.Client's *url.Error", err)
	}
	stop := runCallee(t, w)
	if body, err := get(); err != nil || body != "awake" {
		t.Fatalf("while running: %q, %v", body, err)
	}
	stop()
	if _, err := get(); !errors.Is(err, metro.ErrNotRunning) {
		t.Errorf("after Run: error %v, want ErrNotRunning", err)
	}
	if _, err := (&http.Client{Transport: &metro.Transport{}}).Get("metro:///idle"); !errors.Is(err, metro.ErrNotRunning) {
		t.Errorf("Transport without Conn: error %v, want ErrNotRunning", err)
	}
}

// BenchmarkTransport is one call through http.Client and metro.Transport
// to an SDK worker in the same process, over an embedded NATS server.
func BenchmarkTransport(b *testing.B) {
	s := natstest.Run(b)
	w := calleeWorker(s.ClientURL(), "bench")
	w.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"`+r.PathValue("id")+`"}`)
	})
	w.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, strings.Repeat("x", int(n%7)))
	})
	runCallee(b, w)
	client := &http.Client{Transport: &metro.Transport{Conn: natstest.Connect(b, s)}}
	payload := bytes.Repeat([]byte("p"), 1024)

	b.Run("GET", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := client.Get("metro:///items/42")
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatal(resp.Status)
			}
		}
	})
	b.Run("POST-1KiB", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			resp, err := client.Post("metro:///items", "application/octet-stream", bytes.NewReader(payload))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 201 {
				b.Fatal(resp.Status)
			}
		}
	})
}
