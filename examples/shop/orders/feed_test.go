package orders

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	imetrotest "github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/metrotest"
)

// serveDesk serves a desk over real HTTP, its catalog answered from the
// recorded session.
func serveDesk(t *testing.T, keepalive time.Duration) (*Desk, string) {
	t.Helper()
	d := New(metrotest.Mock(t, "testdata/session.ndjson", "catalog"))
	d.Keepalive = keepalive
	mux := http.NewServeMux()
	for pattern, h := range d.Routes() {
		mux.HandleFunc(pattern, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return d, srv.URL
}

func (d *Desk) clients() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.feeds)
}

// getFeed opens the desk's feed at url, bound to ctx, asking for the
// orders after lastID unless it is empty; the body is closed when the
// test ends.
func getFeed(ctx context.Context, t *testing.T, url, lastID string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/orders/feed", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestFeedKeepaliveAndDisconnect: an idle feed sends keepalive comments,
// and the handler ends, leaving no subscription behind, when its client
// goes.
func TestFeedKeepaliveAndDisconnect(t *testing.T) {
	d, url := serveDesk(t, 10*time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cctx, leave := context.WithCancel(ctx)
	defer leave()
	resp := getFeed(cctx, t, url, "")
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	events := imetrotest.NewEvents(resp.Body)
	for _, want := range []string{"orders as they are placed", "keepalive", "keepalive"} {
		ev, err := events.Next()
		if err != nil || ev.Type != "" || len(ev.Comments) != 1 || ev.Comments[0] != want {
			t.Fatalf("block %+v %v, want the comment %q", ev, err, want)
		}
	}
	if n := d.clients(); n != 1 {
		t.Fatalf("%d feed clients, want 1", n)
	}
	leave()
	imetrotest.WaitFor(t, "the feed's handler to end", 20*time.Second, func() bool { return d.clients() == 0 })
}

// TestFeedDropsLaggingClient: placing orders never waits for a feed
// client; one that falls feedBuffer orders behind is dropped, and on
// reconnecting with Last-Event-ID gets every order it missed.
func TestFeedDropsLaggingClient(t *testing.T) {
	d, url := serveDesk(t, time.Hour)
	slow, _ := d.subscribe(0)
	// An order that waited for the slow client would time out.
	client := &http.Client{Timeout: 10 * time.Second}
	for range feedBuffer + 1 {
		resp, err := client.Post(url+"/orders", "application/json", strings.NewReader(`{"items":[{"product":"apple","quantity":1}]}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /orders: %d", resp.StatusCode)
		}
	}
	n := 0
	for range slow {
		n++
	}
	if n != feedBuffer || d.clients() != 0 {
		t.Errorf("the lagging client got %d orders and is subscribed: %v; want %d and dropped", n, d.clients() != 0, feedBuffer)
	}

	resp := getFeed(t.Context(), t, url, strconv.Itoa(n))
	events := imetrotest.NewEvents(resp.Body)
	if _, err := events.Next(); err != nil { // the opening comment
		t.Fatal(err)
	}
	ev, err := events.Next()
	if want := strconv.Itoa(feedBuffer + 1); err != nil || ev.Type != "order" || ev.ID != want || !strings.Contains(ev.Data, `"id":"`+want+`"`) {
		t.Errorf("after reconnecting: %+v %v, want order %s", ev, err, want)
	}
}

// TestFeedEndsWhenClosing: when the worker stops, every feed ends whole,
// so its clients reconnect elsewhere and the drain is not held up.
func TestFeedEndsWhenClosing(t *testing.T) {
	d, url := serveDesk(t, time.Hour)
	closing := make(chan struct{})
	d.Closing = closing
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	resp := getFeed(ctx, t, url, "")
	events := imetrotest.NewEvents(resp.Body)
	if _, err := events.Next(); err != nil { // the opening comment
		t.Fatal(err)
	}
	close(closing)
	if ev, err := events.Next(); err != io.EOF {
		t.Errorf("after closing: %+v %v, want the end of the feed", ev, err)
	}
}
