package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
	"github.com/metropolis-dev/metro/internal/subject"
	"github.com/metropolis-dev/metro/internal/wire"
)

var quiet = slog.New(slog.DiscardHandler)

// env is one test's world: a NATS server, a gateway behind a real HTTP
// listener, and the workers the test starts.
type env struct {
	t   testing.TB
	ns  *server.Server
	nc  *nats.Conn // the gateway's connection
	gw  *proxy.Gateway
	srv *httptest.Server
	cfg proxy.Config
}

func newEnv(t testing.TB, cfg proxy.Config) *env {
	t.Helper()
	return newEnvWith(t, cfg, &server.Options{})
}

// newEnvWith is newEnv on a NATS server started with opts.
func newEnvWith(t testing.TB, cfg proxy.Config, opts *server.Options) *env {
	t.Helper()
	ns := natstest.RunWith(t, opts)
	// A short reconnect wait keeps a test that stops the server from
	// leaving a client retrying long after it ends.
	nc := natstest.Connect(t, ns, nats.ReconnectWait(50*time.Millisecond))
	if cfg.DiscoveryInterval == 0 {
		cfg.DiscoveryInterval = 50 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	gw, srv := metrotest.StartGateway(t, nc, cfg)
	return &env{t: t, ns: ns, nc: nc, gw: gw, srv: srv, cfg: cfg}
}

// worker starts an SDK worker with the given routes and waits until the
// gateway routes to all of them. The returned func stops it and waits.
func (e *env) worker(name string, routes map[string]http.HandlerFunc, opts ...metro.Option) context.CancelFunc {
	e.t.Helper()
	opts = append([]metro.Option{
		metro.WithNATSURL(e.ns.ClientURL()),
		metro.WithPrefix(e.cfg.Prefix),
		metro.WithLogger(quiet),
	}, opts...)
	w := metro.NewWorker(name, opts...)
	var patterns []string
	for p, h := range routes {
		w.HandleFunc(p, h)
		patterns = append(patterns, p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("worker %s: %v", name, err)
			}
		})
	}
	e.t.Cleanup(stop)
	select {
	case <-w.Ready():
	case err := <-done:
		once.Do(func() {})
		e.t.Fatalf("worker %s stopped: %v", name, err)
	}
	e.waitRoutes(patterns...)
	return stop
}

// waitRoutes polls until the gateway's route table holds every pattern.
func (e *env) waitRoutes(patterns ...string) {
	e.t.Helper()
	want := make([]string, len(patterns))
	for i, p := range patterns {
		r, err := subject.ParsePattern(p)
		if err != nil {
			e.t.Fatalf("pattern %q: %v", p, err)
		}
		want[i] = r.String()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		have := e.gw.Routes()
		missing := false
		for _, w := range want {
			if !slices.Contains(have, w) {
				missing = true
			}
		}
		if !missing {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("gateway has routes %v, want %v", have, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) do(method, path string, body string, hdr map[string]string) (*http.Response, string) {
	e.t.Helper()
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rb)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	return e.doReq(req)
}

func (e *env) doReq(req *http.Request) (*http.Response, string) {
	e.t.Helper()
	return metrotest.Do(e.t, req)
}

// raw sends the bytes of one HTTP/1.1 request as they are, for what an
// http.Client would not send, and reads the response.
func (e *env) raw(req string) (*http.Response, string) {
	e.t.Helper()
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		e.t.Fatalf("reading response to %q: %v", truncate(req, 80), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, string(b)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// responder is a plain nats.go subscriber behind a declared route: what a
// worker in any language without metro's SDK would be.
func (e *env) responder(subj string, fn func(m *nats.Msg)) {
	e.t.Helper()
	nc := natstest.Connect(e.t, e.ns)
	if _, err := nc.Subscribe(subj, fn); err != nil {
		e.t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
}

// checkProblem asserts that an answer is the gateway's own problem body
// for status: RFC 9457 JSON with status, title, detail and the request id
// that X-Request-Id carries, and Retry-After on a 503 or 429.
func checkProblem(t testing.TB, resp *http.Response, body string, status int) wire.Problem {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != wire.ProblemContentType {
		t.Errorf("Content-Type %q, want %q", ct, wire.ProblemContentType)
	}
	var p wire.Problem
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("problem body %q: %v", body, err)
	}
	if p.Status != status || p.Title != http.StatusText(status) || p.Type != "about:blank" {
		t.Errorf("problem %+v: want status %d, title %q, type about:blank", p, status, http.StatusText(status))
	}
	if p.Detail == "" {
		t.Errorf("problem %+v has no detail", p)
	}
	if rid := resp.Header.Get("X-Request-Id"); p.RequestID == "" || p.RequestID != rid {
		t.Errorf("problem request_id %q, X-Request-Id %q", p.RequestID, rid)
	}
	if ra := resp.Header.Get("Retry-After"); (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests) != (ra != "") {
		t.Errorf("status %d with Retry-After %q", status, ra)
	}
	return p
}

// spy watches every message on the server, to prove what the gateway did
// not publish.
type spy struct {
	e  *env
	nc *nats.Conn
	ch chan *nats.Msg
	// subject is where the last message found by published went.
	subject string
}

func (e *env) spy() *spy {
	e.t.Helper()
	s := &spy{e: e, nc: natstest.Connect(e.t, e.ns), ch: make(chan *nats.Msg, 4096)}
	if _, err := s.nc.ChanSubscribe(">", s.ch); err != nil {
		e.t.Fatal(err)
	}
	if err := s.nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// published reports whether a request message with Metro-Request-Id rid
// reached the server. The gateway's connection is flushed first, so
// anything it sent is ahead of the marker that ends the scan.
func (s *spy) published(rid string) bool {
	s.e.t.Helper()
	if err := s.e.nc.Flush(); err != nil {
		s.e.t.Fatal(err)
	}
	const marker = "spy.marker"
	if err := s.nc.Publish(marker, nil); err != nil {
		s.e.t.Fatal(err)
	}
	found := false
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-s.ch:
			if m.Subject == marker {
				return found
			}
			if wire.Get(m.Header, wire.HeaderRequestID) == rid {
				found, s.subject = true, m.Subject
			}
		case <-timeout:
			s.e.t.Fatal("spy: marker never arrived")
		}
	}
}
