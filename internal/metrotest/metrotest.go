// Package metrotest holds what tests across the project share to run metro
// for real: an SDK worker or a gateway on a NATS server, stopped with the
// test, and a buffer for a child process's output.
package metrotest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// StartWorker runs an SDK worker named name with routes on the NATS server
// at url and returns once it is subscribed and announced. The returned
// stop (also run at cleanup) cancels it and fails the test if it did not
// drain cleanly. routes may build handlers from the worker (for its
// Client); opts come after the URL, so they may override it.
func StartWorker(t testing.TB, url, name string, routes func(*metro.Worker) map[string]http.HandlerFunc, opts ...metro.Option) (stop func()) {
	t.Helper()
	w := metro.NewWorker(name, append([]metro.Option{metro.WithNATSURL(url)}, opts...)...)
	for p, h := range routes(w) {
		w.HandleFunc(p, h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var runErr error
	wait := func() { once.Do(func() { cancel(); runErr = <-done }) }
	stop = func() {
		wait()
		if runErr != nil {
			t.Errorf("worker %s: %v", name, runErr)
		}
	}
	t.Cleanup(stop)
	select {
	case <-w.Ready():
	case <-time.After(20 * time.Second):
		t.Fatalf("worker %s not ready after 20s", name)
	case err := <-done:
		once.Do(func() { runErr = err })
		t.Fatalf("worker %s stopped: %v", name, err)
	}
	return stop
}

// Routes adapts a fixed route map for StartWorker.
func Routes(m map[string]http.HandlerFunc) func(*metro.Worker) map[string]http.HandlerFunc {
	return func(*metro.Worker) map[string]http.HandlerFunc { return m }
}

// LockedBuffer is a bytes.Buffer that goroutines may write while a test
// reads it (a child process's output).
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartGateway runs a gateway on nc behind a real HTTP listener until the
// test ends and returns it with the listener's base URL. Discovery runs
// every 50ms unless cfg says otherwise, so routes appear quickly.
func StartGateway(t testing.TB, nc *nats.Conn, cfg proxy.Config) (*proxy.Gateway, *httptest.Server) {
	t.Helper()
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
	return gw, srv
}

// WaitRoutes polls until the gateway routes every pattern given.
func WaitRoutes(t testing.TB, gw *proxy.Gateway, patterns ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		have := map[string]bool{}
		for _, p := range gw.Routes() {
			have[p] = true
		}
		missing := ""
		for _, p := range patterns {
			if !have[p] {
				missing = p
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway has routes %v, still missing %q", gw.Routes(), missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Do sends req with the default client and returns the response with its
// whole body read.
func Do(t testing.TB, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// FirstLine is a writer that hands the first thing a program writes to it
// (its "ready" line or bound address) to C, trimmed, and drops the rest, so
// a test waits on that line instead of sleeping.
type FirstLine struct {
	once sync.Once
	C    chan string
}

// NewFirstLine returns a FirstLine ready to be written.
func NewFirstLine() *FirstLine { return &FirstLine{C: make(chan string, 1)} }

func (w *FirstLine) Write(p []byte) (int, error) {
	w.once.Do(func() { w.C <- strings.TrimSpace(string(p)) })
	return len(p), nil
}
