package metro_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/call"
	"github.com/metropolis-dev/metro/internal/natstest"
)

// TestTransportRunsOnce: two services announce "POST /orders". A request
// from metro.Transport, a worker's Client or metro call carries no route
// of the gateway's, yet runs once, in the owner's group (the least name),
// as it does through the gateway.
func TestTransportRunsOnce(t *testing.T) {
	s := natstest.Run(t)
	var mu sync.Mutex
	ran := map[string]int{}
	for _, name := range []string{"orders-green", "orders-blue"} {
		w := calleeWorker(s.ClientURL(), name)
		w.HandleFunc("POST /orders", func(rw http.ResponseWriter, r *http.Request) {
			mu.Lock()
			ran[name]++
			mu.Unlock()
			io.WriteString(rw, name)
		})
		runCallee(t, w)
	}
	caller := calleeWorker(s.ClientURL(), "caller")
	caller.HandleFunc("GET /unused", func(http.ResponseWriter, *http.Request) {})
	runCallee(t, caller)

	tr := &metro.Transport{Conn: natstest.Connect(t, s)}
	t.Cleanup(tr.CloseIdleConnections)
	clients := map[string]*http.Client{
		"Transport":     {Transport: tr},
		"worker Client": caller.Client(),
	}
	for name, c := range clients {
		for range 10 {
			resp, err := c.Post("metro:///orders", "text/plain", strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "orders-blue" {
				t.Fatalf("%s: %d %q, want orders-blue's answer", name, resp.StatusCode, b)
			}
		}
	}
	var out strings.Builder
	status, err := call.Do(context.Background(), natstest.Connect(t, s), call.Options{Method: "POST", Path: "/orders", Data: "x"}, &out)
	if err != nil || status != 200 || out.String() != "orders-blue" {
		t.Fatalf("metro call: %d %q %v", status, out.String(), err)
	}
	mu.Lock()
	defer mu.Unlock()
	if ran["orders-blue"] != 21 || ran["orders-green"] != 0 {
		t.Errorf("runs %v: want 21 by orders-blue alone", ran)
	}
}
