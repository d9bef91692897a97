package proxy_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// TestRemovedSpecificRoute: workers serve "GET /echo/{p...}" and
// "GET /echo/special"; once the second stops, GET /echo/special goes to
// the tail route at once, as a ServeMux without the removed pattern would,
// rather than naming the dead route (which the live worker declines) and
// waiting for the timeout.
func TestRemovedSpecificRoute(t *testing.T) {
	e := newEnv(t, proxy.Config{Timeout: 5 * time.Second})
	e.worker("echo", map[string]http.HandlerFunc{
		"GET /echo/{p...}": func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "echo ", r.PathValue("p")) },
	})
	stop := e.worker("special", map[string]http.HandlerFunc{
		"GET /echo/special": func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "special") },
	})
	if resp, body := e.do("GET", "/echo/special", "", nil); resp.StatusCode != 200 || body != "special" {
		t.Fatalf("before: %d %q", resp.StatusCode, body)
	}
	stop()
	// The worker's goodbye reaches the gateway a moment after Run returns
	// (longer on a starved machine); until it does, the gateway still
	// names the route, as it would for a worker that ended without one.
	// The bug this guards against answered 504 for ten minutes.
	deadline := time.Now().Add(time.Minute)
	for {
		resp, body := e.do("GET", "/echo/special", "", nil)
		if resp.StatusCode == 200 && body == "echo special" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the specific route's worker stopped: %d %q, want the tail route's answer", resp.StatusCode, body)
		}
	}
	for range 5 {
		if resp, body := e.do("GET", "/echo/special", "", nil); resp.StatusCode != 200 || body != "echo special" {
			t.Fatalf("after the specific route's worker stopped: %d %q, want the tail route's answer", resp.StatusCode, body)
		}
	}
	// With no route left to take it, a dead route is 503 at once.
	stopOnly := e.worker("only", map[string]http.HandlerFunc{
		"POST /only": func(w http.ResponseWriter, r *http.Request) {},
	})
	stopOnly()
	resp, body := e.do("POST", "/only", "", nil)
	checkProblem(t, resp, body, http.StatusServiceUnavailable)
}

// runs counts the requests each service ran.
type runs struct {
	mu sync.Mutex
	by map[string]int
}

func (c *runs) handler(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.by[name]++
		c.mu.Unlock()
		fmt.Fprint(w, name)
	}
}

func (c *runs) get() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.by {
		out[k] = v
	}
	return out
}

// logRecords keeps the messages and attributes a gateway logs.
type logRecords struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

func (l *logRecords) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestTwoServicesOneRoute: two services announce "POST /orders" (a
// renamed worker, a blue/green deploy). Each queue group gets every
// request, but only the owner (the least name) runs it; the gateway warns
// once; when the owner stops, the other takes over.
func TestTwoServicesOneRoute(t *testing.T) {
	logs := &logRecords{}
	e := newEnv(t, proxy.Config{Logger: slog.New(logs)})
	c := &runs{by: map[string]int{}}
	stopBlue := e.worker("orders-blue", map[string]http.HandlerFunc{"POST /orders": c.handler("orders-blue")})
	e.worker("orders-green", map[string]http.HandlerFunc{"POST /orders": c.handler("orders-green")})
	for range 20 {
		if resp, body := e.do("POST", "/orders", "x", nil); resp.StatusCode != 200 || body != "orders-blue" {
			t.Fatalf("POST /orders: %d %q", resp.StatusCode, body)
		}
	}
	// Green's group got a copy of each request too; had it run them, it
	// would have by now (each ran while blue's answer travelled back).
	if got := c.get(); got["orders-blue"] != 20 || got["orders-green"] != 0 {
		t.Fatalf("runs %v: want 20 by orders-blue alone", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !logs.has("owner=orders-blue") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning naming the owner; log: %q", logs.lines)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopBlue()
	for range 5 {
		if resp, body := e.do("POST", "/orders", "x", nil); resp.StatusCode != 200 || body != "orders-green" {
			t.Fatalf("POST /orders after blue stopped: %d %q", resp.StatusCode, body)
		}
	}
	if got := c.get(); got["orders-blue"] != 20 || got["orders-green"] != 5 {
		t.Fatalf("runs %v: want 20 by orders-blue, then 5 by orders-green", got)
	}
}

// TestOwnerSpeaksVersion1: a service that announces no protocol version
// (a version-1 worker, or any micro service) cannot decline a request, so
// it owns a route it shares with a version-2 worker, whatever the names:
// the version-2 worker declines, and the request runs once.
func TestOwnerSpeaksVersion1(t *testing.T) {
	e := newEnv(t, proxy.Config{})
	c := &runs{by: map[string]int{}}
	nc := natstest.Connect(t, e.ns)
	svc, err := micro.AddService(nc, micro.Config{
		Name: "zz-legacy", Version: "1.0.0",
		Endpoint: &micro.EndpointConfig{Subject: "orders.POST", Handler: micro.HandlerFunc(func(r micro.Request) {
			c.mu.Lock()
			c.by["zz-legacy"]++
			c.mu.Unlock()
			r.Respond([]byte("zz-legacy"))
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop() })
	e.waitRoutes("POST /orders")
	e.worker("aa-new", map[string]http.HandlerFunc{"POST /orders": c.handler("aa-new")})
	for range 20 {
		if resp, body := e.do("POST", "/orders", "x", nil); resp.StatusCode != 200 || body != "zz-legacy" {
			t.Fatalf("POST /orders: %d %q", resp.StatusCode, body)
		}
	}
	if got := c.get(); got["zz-legacy"] != 20 || got["aa-new"] != 0 {
		t.Fatalf("runs %v: want 20 by zz-legacy alone", got)
	}
}
