package metro_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natsconn"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
	"github.com/metropolis-dev/metro/internal/wire"
)

var quiet = slog.New(slog.DiscardHandler)

// sdkEnv is a NATS server and a gateway in front of it, over real HTTP.
type sdkEnv struct {
	t   *testing.T
	ns  *server.Server
	gw  *proxy.Gateway
	url string
}

func newSDKEnv(t *testing.T, cfg proxy.Config) *sdkEnv {
	t.Helper()
	ns := natstest.Run(t)
	cfg.DiscoveryInterval = 50 * time.Millisecond
	cfg.Logger = quiet
	gw, srv := metrotest.StartGateway(t, natstest.Connect(t, ns), cfg)
	return &sdkEnv{t: t, ns: ns, gw: gw, url: srv.URL}
}

// start runs w until the test ends and waits until the gateway routes
// every pattern given.
func (e *sdkEnv) start(w *metro.Worker, patterns ...string) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("worker: %v", err)
		}
	})
	select {
	case <-w.Ready():
	case err := <-done:
		e.t.Fatalf("worker stopped: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		have := e.gw.Routes()
		ok := true
		for _, p := range patterns {
			ok = ok && slices.Contains(have, p)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("routes %v, want %v", have, patterns)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *sdkEnv) worker(name string, opts ...metro.Option) *metro.Worker {
	return metro.NewWorker(name, append([]metro.Option{metro.WithNATSURL(e.ns.ClientURL()), metro.WithLogger(quiet)}, opts...)...)
}

func (e *sdkEnv) do(method, path, body string, hdr http.Header) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return metrotest.Do(e.t, req)
}

// seen is what a handler saw of its request.
type seen struct {
	Method, Path, RawPath, RequestURI string
	Query                             map[string][]string
	Header                            http.Header
	Body                              string
	ID, Rest                          string
	Deadline                          time.Time
	HasDeadline                       bool
	RemoteAddr, Host                  string
	ContentLength                     int64
}

func TestRequestAndResponse(t *testing.T) {
	e := newSDKEnv(t, proxy.Config{Timeout: 7 * time.Second})
	w := e.worker("items")
	got := make(chan seen, 1)
	w.HandleFunc("POST /items/{id}/notes/{rest...}", func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		dl, ok := r.Context().Deadline()
		got <- seen{
			Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), RequestURI: r.RequestURI,
			Query: r.URL.Query(), Header: r.Header, Body: string(b),
			ID: r.PathValue("id"), Rest: r.PathValue("rest"), Deadline: dl, HasDeadline: ok,
			RemoteAddr: r.RemoteAddr, Host: r.Host, ContentLength: r.ContentLength,
		}
		rw.Header().Add("X-Multi", "1")
		rw.Header().Add("X-Multi", "2")
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusAccepted)
		io.WriteString(rw, `{"ok":true}`)
		io.WriteString(rw, "\n")
	})
	e.start(w, "POST /items/{id}/notes/{rest...}")

	start := time.Now()
	resp, body := e.do("POST", "/items/a%2Fb/notes/x/y%20z?q=1&q=2&r=%26", "hello body",
		http.Header{"X-A": {"1", "2"}, "Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}})
	end := time.Now()
	if resp.StatusCode != http.StatusAccepted || body != "{\"ok\":true}\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if !slices.Equal(resp.Header["X-Multi"], []string{"1", "2"}) || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("response headers %v", resp.Header)
	}
	s := <-got
	checks := []struct {
		what      string
		got, want any
	}{
		{"method", s.Method, "POST"},
		{"path", s.Path, "/items/a/b/notes/x/y z"},
		{"escaped path", s.RawPath, "/items/a%2Fb/notes/x/y%20z"},
		{"request URI", s.RequestURI, "/items/a%2Fb/notes/x/y%20z?q=1&q=2&r=%26"},
		{"query q", fmt.Sprint(s.Query["q"]), "[1 2]"},
		{"query r", fmt.Sprint(s.Query["r"]), "[&]"},
		{"header", fmt.Sprint(s.Header["X-A"]), "[1 2]"},
		{"traceparent", s.Header.Get("Traceparent"), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		{"request id", s.Header.Get(wire.HeaderRequestID) != "", true},
		{"body", s.Body, "hello body"},
		{"content length", s.ContentLength, int64(10)},
		{"PathValue id", s.ID, "a/b"},
		{"PathValue rest", s.Rest, "x/y z"},
		{"has deadline", s.HasDeadline, true},
		{"remote addr", s.RemoteAddr, "127.0.0.1"},
		{"host", s.Host, strings.TrimPrefix(e.url, "http://")},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	// The gateway set the deadline 7s after it got the request, some time
	// between start and end; Metro-Deadline has millisecond resolution.
	if lo, hi := start.Add(7*time.Second-time.Millisecond), end.Add(7*time.Second); s.Deadline.Before(lo) || s.Deadline.After(hi) {
		t.Errorf("deadline %v after the request was sent, want 7s after the gateway got it (within %v)", s.Deadline.Sub(start), end.Sub(start))
	}
}

// TestPlainNATSRequest: a request sent by any NATS client, without the
// gateway's headers, is still served: no deadline, a fresh request id.
func TestPlainNATSRequest(t *testing.T) {
	e := newSDKEnv(t, proxy.Config{})
	w := e.worker("items")
	got := make(chan seen, 1)
	w.HandleFunc("GET /items/{id}", func(rw http.ResponseWriter, r *http.Request) {
		_, ok := r.Context().Deadline()
		got <- seen{ID: r.PathValue("id"), HasDeadline: ok, Header: r.Header}
		io.WriteString(rw, "item")
	})
	e.start(w, "GET /items/{id}")
	m, err := natstest.Connect(t, e.ns).Request("items.a%2Fb.GET", nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "item" || m.Header.Get(wire.HeaderStatus) != "" {
		t.Errorf("reply %q %v", m.Data, m.Header)
	}
	s := <-got
	if s.ID != "a/b" || s.HasDeadline || s.Header.Get(wire.HeaderRequestID) == "" {
		t.Errorf("handler saw %+v", s)
	}
}

func TestHandlerPanic(t *testing.T) {
	e := newSDKEnv(t, proxy.Config{})
	w := e.worker("boom")
	w.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	w.HandleFunc("GET /half", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("X-Half", "1")
		io.WriteString(rw, "partial")
		panic("after writing")
	})
	w.HandleFunc("GET /ok", func(rw http.ResponseWriter, r *http.Request) { io.WriteString(rw, "ok") })
	e.start(w, "GET /boom", "GET /half", "GET /ok")
	for i := range 3 {
		for _, path := range []string{"/boom", "/half"} {
			resp, body := e.do("GET", path, "", http.Header{"X-Request-Id": {fmt.Sprint("p", i)}})
			if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != wire.ProblemContentType {
				t.Fatalf("%s: %d %s %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			var p wire.Problem
			if err := json.Unmarshal([]byte(body), &p); err != nil || p.Status != 500 || p.RequestID != fmt.Sprint("p", i) || p.Detail == "" {
				t.Errorf("%s: problem %q (%v)", path, body, err)
			}
			if resp.Header.Get("X-Half") != "" || strings.Contains(body, "partial") {
				t.Errorf("%s: a panicking handler's partial response leaked: %v %q", path, resp.Header, body)
			}
		}
		if resp, body := e.do("GET", "/ok", "", nil); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("after a panic: %d %q", resp.StatusCode, body)
		}
	}
}

// TestConcurrency: handlers run in parallel, and WithConcurrency bounds
// how many run at once. Both are shown by where handlers wait, not by how
// long requests take: in the default pool all n handlers meet at a
// barrier, which they could not if any waited for another to finish; with
// a bound, handlers are let go one at a time and never more than the
// bound are running.
func TestConcurrency(t *testing.T) {
	const n = 8
	t.Run("default pool", func(t *testing.T) {
		e := newSDKEnv(t, proxy.Config{Timeout: 20 * time.Second})
		w := e.worker("slow")
		var arrived atomic.Int32
		all := make(chan struct{})
		w.HandleFunc("GET /slow/{i}", func(rw http.ResponseWriter, r *http.Request) {
			if arrived.Add(1) == n {
				close(all)
			}
			select {
			case <-all:
			case <-r.Context().Done():
				http.Error(rw, fmt.Sprintf("%d of %d handlers ran at once", arrived.Load(), n), http.StatusInternalServerError)
			}
		})
		e.start(w, "GET /slow/{i}")
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if resp, body := e.do("GET", fmt.Sprint("/slow/", i), "", nil); resp.StatusCode != 200 {
					t.Errorf("request %d: %d %s", i, resp.StatusCode, body)
				}
			})
		}
		wg.Wait()
	})
	t.Run("bounded to 2", func(t *testing.T) {
		const limit = 2
		e := newSDKEnv(t, proxy.Config{Timeout: 20 * time.Second})
		w := e.worker("slow", metro.WithConcurrency(limit))
		var running, peak atomic.Int32
		release := make(chan struct{})
		w.HandleFunc("GET /slow/{i}", func(rw http.ResponseWriter, r *http.Request) {
			now := running.Add(1)
			for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
			running.Add(-1)
		})
		e.start(w, "GET /slow/{i}")
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if resp, _ := e.do("GET", fmt.Sprint("/slow/", i), "", nil); resp.StatusCode != 200 {
					t.Errorf("request %d: %d", i, resp.StatusCode)
				}
			})
		}
		for left := n; left > 0; left-- {
			// As many as the bound allows run, the rest wait their turn.
			want := int32(min(limit, left))
			deadline := time.Now().Add(20 * time.Second)
			for running.Load() != want {
				if time.Now().After(deadline) {
					t.Fatalf("%d handlers running with %d requests left, want %d", running.Load(), left, want)
				}
				time.Sleep(5 * time.Millisecond)
			}
			release <- struct{}{}
		}
		wg.Wait()
		if p := peak.Load(); p != limit {
			t.Errorf("at most %d handlers ran at once, want %d", p, limit)
		}
	})
}

func TestHeadOnGetRoute(t *testing.T) {
	e := newSDKEnv(t, proxy.Config{})
	w := e.worker("pages")
	w.HandleFunc("GET /page", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("X-Page", r.Method)
		io.WriteString(rw, "hello")
	})
	e.start(w, "GET /page", "HEAD /page")
	resp, body := e.do("HEAD", "/page", "", nil)
	if resp.StatusCode != 200 || body != "" || resp.Header.Get("X-Page") != "HEAD" || resp.ContentLength != 5 {
		t.Errorf("HEAD: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, body = e.do("GET", "/page", "", nil)
	if resp.StatusCode != 200 || body != "hello" {
		t.Errorf("GET: %d %q", resp.StatusCode, body)
	}
	resp, _ = e.do("POST", "/page", "", nil)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestServiceProtocol: a worker answers $SRV.PING, INFO and STATS like any
// micro service, and STATS counts requests and errors per endpoint.
func TestServiceProtocol(t *testing.T) {
	e := newSDKEnv(t, proxy.Config{})
	w := e.worker("stats", metro.WithVersion("1.2.3"), metro.WithDescription("counts"))
	w.HandleFunc("GET /ok", func(http.ResponseWriter, *http.Request) {})
	w.HandleFunc("POST /fail/{n}", func(rw http.ResponseWriter, r *http.Request) {
		if r.PathValue("n") == "panic" {
			panic("no")
		}
		rw.WriteHeader(http.StatusServiceUnavailable)
	})
	e.start(w, "GET /ok", "POST /fail/{n}")
	for range 3 {
		e.do("GET", "/ok", "", nil)
	}
	e.do("POST", "/fail/1", "", nil)
	e.do("POST", "/fail/panic", "", nil)

	nc := natstest.Connect(t, e.ns)
	ask := func(subj string, v any) {
		t.Helper()
		m, err := nc.Request(subj, nil, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", subj, err)
		}
		if err := json.Unmarshal(m.Data, v); err != nil {
			t.Fatalf("%s: %v in %s", subj, err, m.Data)
		}
	}
	var ping micro.Ping
	ask("$SRV.PING.stats", &ping)
	if ping.Name != "stats" || ping.ID == "" || ping.Version != "1.2.3" || ping.Type != micro.PingResponseType {
		t.Errorf("PING %+v", ping)
	}
	var info micro.Info
	ask("$SRV.INFO.stats."+ping.ID, &info)
	if info.Description != "counts" || info.Type != micro.InfoResponseType {
		t.Errorf("INFO %+v", info)
	}
	eps := map[string]micro.EndpointInfo{}
	for _, ep := range info.Endpoints {
		eps[ep.Subject] = ep
		if ep.QueueGroup != "stats" {
			t.Errorf("endpoint %s in queue group %q", ep.Name, ep.QueueGroup)
		}
	}
	for subj, meta := range map[string][2]string{
		"ok.GET": {"GET", "/ok"}, "ok.HEAD": {"HEAD", "/ok"}, "fail.*.POST": {"POST", "/fail/{n}"},
	} {
		ep, ok := eps[subj]
		if !ok || ep.Metadata[discovery.MetaMethod] != meta[0] || ep.Metadata[discovery.MetaPath] != meta[1] {
			t.Errorf("endpoint %s: %+v", subj, ep)
		}
	}
	// A request is counted once its reply is sent, a moment after the
	// client may have read it.
	var stats micro.Stats
	counts := map[string][2]int{}
	counted := func() bool {
		ask("$SRV.STATS", &stats)
		clear(counts)
		for _, ep := range stats.Endpoints {
			counts[ep.Subject] = [2]int{ep.NumRequests, ep.NumErrors}
		}
		return counts["ok.GET"] == [2]int{3, 0} && counts["fail.*.POST"] == [2]int{2, 2}
	}
	if !natsconn.Poll(t.Context(), 10*time.Second, counted) {
		t.Errorf("requests and errors by subject: %v", counts)
	}
	if stats.ID != ping.ID || stats.Type != micro.StatsResponseType {
		t.Errorf("STATS %+v", stats)
	}
	// Asking every service, as `nats micro ls` does, reaches it too.
	msgs := make(chan *nats.Msg, 4)
	inbox := nats.NewInbox()
	sub, _ := nc.ChanSubscribe(inbox, msgs)
	defer sub.Unsubscribe()
	nc.PublishRequest("$SRV.PING", inbox, nil)
	select {
	case m := <-msgs:
		if !strings.Contains(string(m.Data), ping.ID) {
			t.Errorf("PING reply %s", m.Data)
		}
	case <-time.After(10 * time.Second):
		t.Error("no reply to $SRV.PING")
	}
}

// TestEnvironment: a worker built with no options takes its NATS URL,
// subject prefix and health address from NATS_URL, METRO_PREFIX and
// METRO_HEALTH_ADDR, as a deployed container's would.
func TestEnvironment(t *testing.T) {
	e := newSDKEnv(t, proxy.Config{Prefix: "env"})
	// The worker binds it; a clash fails Run rather than passing.
	health := "127.0.0.1:" + strconv.Itoa(natstest.FreePort(t))
	t.Setenv(metro.EnvNATSURL, e.ns.ClientURL())
	t.Setenv(metro.EnvPrefix, "env")
	t.Setenv(metro.EnvHealthAddr, health)
	w := metro.NewWorker("envy", metro.WithLogger(quiet))
	w.HandleFunc("GET /hi", func(rw http.ResponseWriter, r *http.Request) { io.WriteString(rw, "hi") })
	e.start(w, "GET /hi")
	if resp, body := e.do("GET", "/hi", "", nil); resp.StatusCode != 200 || body != "hi" {
		t.Errorf("through the gateway: %d %q", resp.StatusCode, body)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + health + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}

// TestPathValues: a segment with any bytes reaches the handler's
// PathValue exactly as the client escaped it, whatever NATS's subject
// syntax makes of those bytes on the way (PROTOCOL.md section 1).
func TestPathValues(t *testing.T) {
	e := newSDKEnv(t, proxy.Config{})
	w := e.worker("echo")
	w.HandleFunc("GET /v/{x}", func(rw http.ResponseWriter, r *http.Request) { io.WriteString(rw, r.PathValue("x")) })
	w.HandleFunc("GET /t/{rest...}", func(rw http.ResponseWriter, r *http.Request) { io.WriteString(rw, r.PathValue("rest")) })
	e.start(w, "GET /v/{x}", "GET /t/{rest...}")
	for _, tc := range []struct{ path, want string }{
		{"/v/a.b", "a.b"},
		{"/v/a%20b", "a b"},
		{"/v/%C3%A4", "\u00e4"},
		{"/v/%25", "%"},
		{"/v/%2A", "*"},
		{"/v/%3E", ">"},
		{"/v/$x", "$x"},
		{"/v/~-_", "~-_"},
		{"/v/a%2Fb", "a/b"},
		{"/v/%00", "\x00"},
		{"/v/" + strings.Repeat("%FF", 100), strings.Repeat("\xff", 100)},
		{"/v/_INBOX", "_INBOX"},
		{"/t/a.b/c%20d/", "a.b/c d/"},
		{"/t/%2E%2E.", "..."},
	} {
		resp, body := e.do("GET", tc.path, "", nil)
		if resp.StatusCode != 200 || body != tc.want {
			t.Errorf("%s: %d %q, want %q", tc.path, resp.StatusCode, body, tc.want)
		}
	}
}
