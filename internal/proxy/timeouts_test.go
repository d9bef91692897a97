package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// slowRoute is a gateway server whose default timeout is 200ms and whose
// route GET /slow/{n} has its own of 30s, served by a plain subscriber
// that answers "done" after work (a sleep standing for a slow handler) of
// the given length. received gets each request as it arrives.
func slowRoute(t *testing.T, work time.Duration) (ctx context.Context, stop context.CancelFunc, addr string, access *metrotest.LockedBuffer, received chan struct{}, done chan error) {
	ns := natstest.Run(t)
	received = make(chan struct{}, 4)
	sub := natstest.Connect(t, ns)
	if _, err := sub.Subscribe("slow.*.GET", func(m *nats.Msg) {
		received <- struct{}{}
		time.Sleep(work)
		m.Respond([]byte("done"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	access = &metrotest.LockedBuffer{}
	ctx, stop = context.WithCancel(context.Background())
	s, err := proxy.NewServer(ctx, proxy.ServerConfig{
		Listen: "127.0.0.1:0",
		// The server's connection deadlines come from this default, with
		// margins of 10s (reads) and 15s (writes).
		Gateway: proxy.Config{
			Timeout:           200 * time.Millisecond,
			Routes:            []proxy.RouteConfig{{Match: "GET /slow/{n}", Timeout: 30 * time.Second}},
			DiscoveryInterval: 50 * time.Millisecond,
		},
		Conn:      natstest.Connect(t, ns),
		Logger:    quiet,
		AccessLog: access,
	})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	return ctx, stop, s.Addr().String(), access, received, done
}

// accessEntry polls the access log for the entry of path.
func accessEntry(t *testing.T, access *metrotest.LockedBuffer, path string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(access.String(), "\n") {
			var e map[string]any
			if json.Unmarshal([]byte(line), &e) == nil && e["path"] == path {
				return e
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no access log entry for %s in %q", path, access.String())
	return nil
}

// TestLongRouteIsNotCutOff: a route whose timeout is longer than the
// default gets its whole reply to the client, though the handler takes
// longer than the default timeout plus the server's margins (past the
// server's write deadline, a reply is lost while the log says 200).
func TestLongRouteIsNotCutOff(t *testing.T) {
	t.Parallel()
	_, _, addr, access, _, _ := slowRoute(t, 16*time.Second)
	client := &http.Client{Timeout: 40 * time.Second}
	resp, err := client.Get("http://" + addr + "/slow/1")
	if err != nil {
		t.Fatalf("the client got no reply: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(b) != "done" {
		t.Fatalf("got %d %q (%v), want 200 \"done\"", resp.StatusCode, b, err)
	}
	if e := accessEntry(t, access, "/slow/1"); e["status"] != 200.0 || e["bytes"] != 4.0 {
		t.Errorf("access log %v, want status 200 and 4 bytes", e)
	}
}

// TestStopWaitsForTheLongestRoute: a stop lets a request on the longest
// route finish, not only as long as the default timeout allows.
func TestStopWaitsForTheLongestRoute(t *testing.T) {
	t.Parallel()
	_, stop, addr, access, received, done := slowRoute(t, 6*time.Second)
	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		client := &http.Client{Timeout: 40 * time.Second}
		resp, err := client.Get("http://" + addr + "/slow/2")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{resp.StatusCode, string(b), err}
	}()
	select {
	case <-received:
	case <-time.After(20 * time.Second):
		t.Fatal("the request never reached the subscriber")
	}
	stop()
	r := <-res
	if r.err != nil || r.status != 200 || r.body != "done" {
		t.Errorf("during a stop the client got %d %q (%v), want 200 \"done\"", r.status, r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	done <- nil // for the cleanup
	if e := accessEntry(t, access, "/slow/2"); e["status"] != 200.0 {
		t.Errorf("access log %v, want status 200", e)
	}
}
