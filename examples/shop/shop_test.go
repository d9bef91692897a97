package shop_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/examples/shop/catalog"
	"github.com/metropolis-dev/metro/examples/shop/orders"
	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/devtoken"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// shop runs the example as metro dev would, in process: a real NATS
// server, the gateway on a real listener configured from metro.yaml, and
// both workers.
type shop struct {
	t       *testing.T
	url     string
	token   string // sent as a bearer token when set
	gw      *proxy.Gateway
	catalog func() // stops the catalog worker
}

func start(t *testing.T) *shop {
	t.Helper()
	return startWith(t, func(*config.Config) {})
}

// startWith runs the shop with metro.yaml as edit leaves it.
func startWith(t *testing.T, edit func(*config.Config)) *shop {
	t.Helper()
	cfg, err := config.Load("metro.yaml")
	if err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	gcfg, err := proxy.ConfigFrom(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns := natstest.Run(t)
	gw, srv := metrotest.StartGateway(t, natstest.Connect(t, ns), gcfg)
	var tok strings.Builder
	if err := devtoken.Run(devtoken.Options{Config: cfg, Sub: "alice", Out: &tok, ErrOut: io.Discard}); err != nil {
		t.Fatal(err)
	}
	s := &shop{t: t, url: srv.URL, gw: gw, token: strings.TrimSpace(tok.String())}
	s.catalog = metrotest.StartWorker(t, ns.ClientURL(), "catalog", metrotest.Routes(catalog.Routes()))
	metrotest.StartWorker(t, ns.ClientURL(), "orders", func(w *metro.Worker) map[string]http.HandlerFunc { return orders.New(w.Client()).Routes() })
	metrotest.WaitRoutes(t, gw, "GET /products", "GET /products/{id}", "POST /orders", "GET /orders", "GET /orders/{id}", "GET /orders/feed")
	return s
}

func (s *shop) call(method, path, body string) (int, http.Header, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if strings.HasPrefix(strings.TrimSpace(string(b)), "{") {
		if err := json.Unmarshal(b, &v); err != nil {
			s.t.Fatalf("%s %s: %v in %q", method, path, err, b)
		}
	} else {
		v = map[string]any{"_raw": string(b)}
	}
	return resp.StatusCode, resp.Header, v
}

func TestShop(t *testing.T) {
	s := start(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		contentType              string
		check                    func(t *testing.T, v map[string]any)
	}{
		{"list products", "GET", "/products", "", 200, "application/json", func(t *testing.T, v map[string]any) {
			if !strings.Contains(v["_raw"].(string), `"id":"apple"`) {
				t.Errorf("list: %v", v)
			}
		}},
		{"get product", "GET", "/products/banana", "", 200, "application/json", func(t *testing.T, v map[string]any) {
			if v["price"] != float64(25) {
				t.Errorf("banana: %v", v)
			}
		}},
		{"unknown product", "GET", "/products/durian", "", 404, "application/problem+json", func(t *testing.T, v map[string]any) {
			if v["detail"] != "no product durian" || v["request_id"] == "" {
				t.Errorf("problem: %v", v)
			}
		}},
		{"create order", "POST", "/orders", `{"items":[{"product":"apple","quantity":3},{"product":"cherry","quantity":1}]}`, 201, "application/json", func(t *testing.T, v map[string]any) {
			if v["total"] != float64(3*50+400) || v["id"] != "1" || v["customer"] != "alice" {
				t.Errorf("order: %v", v)
			}
		}},
		{"get order", "GET", "/orders/1", "", 200, "application/json", func(t *testing.T, v map[string]any) {
			if v["total"] != float64(550) {
				t.Errorf("order: %v", v)
			}
		}},
		{"missing order", "GET", "/orders/99", "", 404, "application/problem+json", nil},
		{"not json", "POST", "/orders", `{"items":`, 400, "application/problem+json", nil},
		{"unknown field", "POST", "/orders", `{"items":[],"coupon":"x"}`, 400, "application/problem+json", nil},
		{"no items", "POST", "/orders", `{"items":[]}`, 422, "application/problem+json", func(t *testing.T, v map[string]any) {
			if v["detail"] != "an order needs at least one item" {
				t.Errorf("problem: %v", v)
			}
		}},
		{"bad quantity", "POST", "/orders", `{"items":[{"product":"apple","quantity":0}]}`, 422, "application/problem+json", func(t *testing.T, v map[string]any) {
			if !strings.Contains(v["detail"].(string), "items[0].quantity must be 1 to 100") {
				t.Errorf("problem: %v", v)
			}
		}},
		{"unknown product in order", "POST", "/orders", `{"items":[{"product":"durian","quantity":1}]}`, 422, "application/problem+json", func(t *testing.T, v map[string]any) {
			if v["detail"] != `unknown product "durian"` {
				t.Errorf("problem: %v", v)
			}
		}},
		{"wrong method", "DELETE", "/orders/1", "", 405, "application/problem+json", nil},
		{"no route", "GET", "/basket", "", 404, "application/problem+json", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, v := s.call(tt.method, tt.path, tt.body)
			if status != tt.status {
				t.Fatalf("%s %s = %d %v, want %d", tt.method, tt.path, status, v, tt.status)
			}
			if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, tt.contentType) {
				t.Errorf("Content-Type %q, want %q", ct, tt.contentType)
			}
			if h.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
			if tt.check != nil {
				tt.check(t, v)
			}
		})
	}
}

// With the catalog down, placing an order fails fast with 503 instead of
// hanging until the gateway's timeout.
func TestOrderWhenCatalogIsDown(t *testing.T) {
	s := start(t)
	s.catalog()
	began := time.Now()
	status, _, v := s.call("POST", "/orders", `{"items":[{"product":"apple","quantity":1}]}`)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("status %d %v, want 503", status, v)
	}
	if !strings.Contains(v["detail"].(string), "catalog answered 503") {
		t.Errorf("detail: %v", v["detail"])
	}
	// The route's timeout is 5s; no-responders must answer well before.
	if d := time.Since(began); d > 4*time.Second {
		t.Errorf("took %v: the order hung on the missing catalog", d)
	}
	// The catalog's own route is still known: 503 with Retry-After, not 404.
	status, h, _ := s.call("GET", "/products/apple", "")
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("GET /products/apple with catalog down: %d Retry-After=%q", status, h.Get("Retry-After"))
	}
}

// Placing an order needs a token from the project's JWKS (metro token);
// browsing does not.
func TestOrderNeedsToken(t *testing.T) {
	s := start(t)
	s.token = ""
	status, h, v := s.call("POST", "/orders", `{"items":[{"product":"apple","quantity":1}]}`)
	if status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("order without a token: %d %v %v", status, h.Get("WWW-Authenticate"), v)
	}
	if status, _, v := s.call("GET", "/products/apple", ""); status != http.StatusOK {
		t.Errorf("browsing without a token: %d %v", status, v)
	}
}

// openFeed opens GET /orders/feed through the gateway, with lastID as
// Last-Event-ID unless it is empty, and reads up to the comment that says
// the feed is open.
func (s *shop) openFeed(ctx context.Context, lastID string) (*metrotest.Events, func()) {
	s.t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/orders/feed", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	closeFeed := func() { cancel(); resp.Body.Close() }
	s.t.Cleanup(closeFeed)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		s.t.Fatalf("GET /orders/feed: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	// Streamed: no length, so the end of the body shows whether it is whole.
	if resp.ContentLength != -1 {
		s.t.Errorf("feed Content-Length = %d, want none (chunked)", resp.ContentLength)
	}
	events := metrotest.NewEvents(resp.Body)
	ev, err := events.Next()
	if err != nil || len(ev.Comments) == 0 || ev.Type != "" {
		s.t.Fatalf("feed's first block: %+v %v, want its opening comment", ev, err)
	}
	return events, closeFeed
}

// nextOrder reads events, past keepalive comments, up to the next order.
func nextOrder(t *testing.T, events *metrotest.Events) (string, orders.Order) {
	t.Helper()
	for {
		ev, err := events.Next()
		if err != nil {
			t.Fatalf("reading the feed: %v", err)
		}
		if ev.Type == "" {
			continue
		}
		var o orders.Order
		if ev.Type != "order" || json.Unmarshal([]byte(ev.Data), &o) != nil {
			t.Fatalf("feed event %+v, want an order", ev)
		}
		return ev.ID, o
	}
}

// TestOrderFeed: GET /orders/feed streams every order to every feed
// client as it is placed, through the gateway and NATS, while the
// response stays open; a client that reconnects with Last-Event-ID gets
// the orders it missed first.
func TestOrderFeed(t *testing.T) {
	s := start(t)
	// A feed that never sends fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	a, closeA := s.openFeed(ctx, "")
	b, _ := s.openFeed(ctx, "")

	// Each order reaches both feeds before the next is placed: the
	// events come while the responses are open, not when they end.
	for i, item := range []string{"apple", "banana"} {
		status, _, v := s.call("POST", "/orders", `{"items":[{"product":"`+item+`","quantity":2}]}`)
		if status != http.StatusCreated {
			t.Fatalf("POST /orders: %d %v", status, v)
		}
		for name, feed := range map[string]*metrotest.Events{"a": a, "b": b} {
			id, o := nextOrder(t, feed)
			if want := strconv.Itoa(i + 1); id != want || o.ID != want || o.Items[0].Product != item || o.Customer != "alice" || float64(o.Total) != v["total"] {
				t.Errorf("feed %s: event %s %+v, want order %s of %s as placed (%v)", name, id, o, want, item, v)
			}
		}
	}

	// A reconnect after order 1 catches up with order 2, then goes on live.
	closeA()
	c, _ := s.openFeed(ctx, "1")
	if id, o := nextOrder(t, c); id != "2" || o.Items[0].Product != "banana" {
		t.Errorf("after Last-Event-ID 1: event %s %+v, want order 2", id, o)
	}
	if status, _, v := s.call("POST", "/orders", `{"items":[{"product":"cherry","quantity":1}]}`); status != http.StatusCreated {
		t.Fatalf("POST /orders: %d %v", status, v)
	}
	for name, feed := range map[string]*metrotest.Events{"b": b, "c": c} {
		if id, o := nextOrder(t, feed); id != "3" || o.Items[0].Product != "cherry" {
			t.Errorf("feed %s: event %s %+v, want order 3", name, id, o)
		}
	}
}

// TestOrderFeedEndsWhole: the feed ends by itself shortly before its
// route's timeout, so its response ends whole (the last chunk sent)
// rather than being cut by the gateway as a broken stream.
func TestOrderFeedEndsWhole(t *testing.T) {
	s := startWith(t, func(c *config.Config) {
		for i, r := range c.Gateway.Routes {
			if r.Match == "GET /orders/feed" {
				c.Gateway.Routes[i].Timeout = config.Duration(3 * time.Second)
			}
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	events, _ := s.openFeed(ctx, "")
	for {
		ev, err := events.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("the feed ended with %v, want its whole end", err)
		}
		if ev.Type != "" {
			t.Errorf("an event nobody placed: %+v", ev)
		}
	}
}
