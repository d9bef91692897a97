package proxy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// env is one test's world: a NATS server, a gateway behind a real HTTP
// listener, and the workers the test starts.
type env struct {
	t   *testing.T
	ns  *server.Server
	gw  *proxy.Gateway
	srv *httptest.Server
	cfg proxy.Config
}

func newEnv(t *testing.T, cfg proxy.Config) *env {
	t.Helper()
	ns := natstest.Run(t)
	nc := natstest.Connect(t, ns)
	if cfg.DiscoveryInterval == 0 {
		cfg.DiscoveryInterval = 50 * time.Millisecond
	}
	gw, err := proxy.New(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); gw.Run(ctx) }()
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return &env{t: t, ns: ns, gw: gw, srv: srv, cfg: cfg}
}

// worker starts an SDK worker with the given routes and waits until the
// gateway routes to all of them.
func (e *env) worker(name string, routes map[string]http.HandlerFunc, opts ...metro.Option) context.CancelFunc {
	e.t.Helper()
	opts = append([]metro.Option{metro.WithNATSURL(e.ns.ClientURL()), metro.WithPrefix(e.cfg.Prefix)}, opts...)
	w := metro.NewWorker(name, opts...)
	for p, h := range routes {
		w.HandleFunc(p, h)
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
	e.waitRoutes(len(routes))
	return stop
}

// waitRoutes polls until the gateway knows at least n routes.
func (e *env) waitRoutes(n int) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(e.gw.Routes()) < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("gateway has routes %v, want %d", e.gw.Routes(), n)
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
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, string(b)
}

func conn(t *testing.T, ns *server.Server) *nats.Conn { return natstest.Connect(t, ns) }
