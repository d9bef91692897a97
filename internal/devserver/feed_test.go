package devserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/devstate"
	"github.com/metropolis-dev/metro/internal/metrotest"
)

// testOrderFeed checks the shop's live order feed on a running metro dev:
// the response is a stream of server-sent events that stays open, and an
// order placed meanwhile arrives on it as an event, through the gateway,
// NATS on a locked bus and the orders worker's process. The feed stays
// open for the caller until ctx ends.
func testOrderFeed(ctx context.Context, t *testing.T, dir string, st devstate.State) *metrotest.Events {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, st.GatewayURL+"/orders/feed", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	// The body is closed when ctx ends.
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || resp.ContentLength != -1 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		t.Fatalf("GET /orders/feed: %d %q length %d %s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.ContentLength, b)
	}
	events := metrotest.NewEvents(resp.Body)
	// The opening comment comes before any order: from here on, the
	// feed's handler is subscribed.
	if ev, err := events.Next(); err != nil || len(ev.Comments) == 0 {
		t.Fatalf("feed's first block: %+v %v", ev, err)
	}

	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// An order that never shows fails instead of hanging.
	stopWaiting := context.AfterFunc(pctx, func() { resp.Body.Close() })
	defer stopWaiting()
	order := `{"items":[{"product":"cherry","quantity":2}]}`
	post, err := http.NewRequestWithContext(pctx, http.MethodPost, st.GatewayURL+"/orders", strings.NewReader(order))
	if err != nil {
		t.Fatal(err)
	}
	post.Header.Set("Authorization", "Bearer "+shopToken(t, dir))
	presp, err := http.DefaultClient.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	var placed struct {
		ID    string `json:"id"`
		Total int    `json:"total"`
	}
	err = json.NewDecoder(presp.Body).Decode(&placed)
	presp.Body.Close()
	if presp.StatusCode != http.StatusCreated || err != nil {
		t.Fatalf("POST /orders: %d %v", presp.StatusCode, err)
	}

	for {
		ev, err := events.Next()
		if err != nil {
			t.Fatalf("waiting for order %s on the feed: %v", placed.ID, err)
		}
		if ev.Type == "" {
			continue // a keepalive
		}
		var got struct {
			ID       string `json:"id"`
			Total    int    `json:"total"`
			Customer string `json:"customer"`
		}
		if ev.Type != "order" || json.Unmarshal([]byte(ev.Data), &got) != nil {
			t.Fatalf("feed event %+v, want an order", ev)
		}
		if got.ID != placed.ID {
			continue // an order placed by an earlier step
		}
		if ev.ID != placed.ID || got.Total != placed.Total || got.Customer != "alice" {
			t.Errorf("feed event %+v, want order %+v of alice", ev, placed)
		}
		return events
	}
}
