package shop_test

import (
	"encoding/json"
	"io"
	"net/http"
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
	cfg, err := config.Load("metro.yaml")
	if err != nil {
		t.Fatal(err)
	}
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
	metrotest.WaitRoutes(t, gw, "GET /products", "GET /products/{id}", "POST /orders", "GET /orders", "GET /orders/{id}")
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
