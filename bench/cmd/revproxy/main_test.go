package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/metrotest"
)

func TestRevproxyForwardsAndReusesConnections(t *testing.T) {
	var conns atomic.Int64
	var xff atomic.Value
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		xff.Store(r.Header.Get("X-Forwarded-For"))
		io.WriteString(w, "from backend "+r.URL.Path)
	}))
	backend.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	backend.Start()
	t.Cleanup(backend.Close)

	ctx, cancel := context.WithCancel(context.Background())
	addr := metrotest.NewFirstLine()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-backend", backend.URL}, addr) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("revproxy: %v", err)
		}
	})
	var a string
	select {
	case a = <-addr.C:
	case <-time.After(10 * time.Second):
		t.Fatal("revproxy did not announce its address")
	}
	// Sequential requests over one client connection: the proxy must keep
	// its upstream connection too, which is the point of the tuned Transport.
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	for i := range 5 {
		resp, err := client.Get("http://" + a + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "from backend /hello" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if got := xff.Load(); got != "127.0.0.1" {
		t.Errorf("backend saw X-Forwarded-For %q, want 127.0.0.1", got)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("proxy opened %d upstream connections for 5 sequential requests, want 1", n)
	}
}

func TestRevproxyRejectsBadBackend(t *testing.T) {
	for _, b := range []string{"", "127.0.0.1:80", "://x"} {
		if err := run(context.Background(), []string{"-listen", "127.0.0.1:0", "-backend", b}, io.Discard); err == nil {
			t.Errorf("-backend %q accepted", b)
		}
	}
}
