package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// TestRollingRestartLosesNoRequest: a 3-server cluster restarted one
// server at a time through lame duck mode, as Kubernetes rolls the NATS
// StatefulSet that metro deploy emits, while clients keep sending
// requests through the gateway to two workers: not one request fails.
// The gateway and the workers move off each server on its lame duck
// notice, before it closes their connections.
func TestRollingRestartLosesNoRequest(t *testing.T) {
	c := natstest.RunCluster(t, 3, 3*time.Second)
	urls := c.URLs()
	routes := metrotest.Routes(map[string]http.HandlerFunc{
		"POST /work/{n}": func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(5 * time.Millisecond) // a handler doing some work
			io.Copy(w, r.Body)
		},
	})
	// Each worker lists the servers in another order, so that they do
	// not all sit on one.
	for i := 0; i < 2; i++ {
		metrotest.StartWorker(t, urls, "work", routes, metro.WithLogger(quiet), metro.WithNATSOptions(nats.DontRandomize()))
	}
	s := runServerWith(t, proxy.ServerConfig{NATSURL: urls, Gateway: proxy.Config{Timeout: 20 * time.Second}})
	base := "http://" + s.Addr().String()
	waitStatus(t, base+"/work/0", http.StatusMethodNotAllowed)

	ctx, cancel := context.WithCancel(context.Background())
	var sent, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				body := fmt.Sprintf("%d-%d", g, i)
				resp, err := client.Post(fmt.Sprintf("%s/work/%d", base, i), "text/plain", stringsReader(body))
				sent.Add(1)
				var got []byte
				if err == nil {
					got, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 || string(got) != body {
					failed.Add(1)
					mu.Lock()
					if err != nil {
						failures = append(failures, err.Error())
					} else {
						failures = append(failures, fmt.Sprintf("%d %s", resp.StatusCode, got))
					}
					mu.Unlock()
				}
			}
		}()
	}
	// Load before, through and after each restart.
	waitSent := func(n int64) {
		deadline := time.Now().Add(30 * time.Second)
		for sent.Load() < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitSent(100)
	for i := range c.Servers {
		c.Restart(i)
		waitSent(sent.Load() + 100)
	}
	cancel()
	wg.Wait()
	t.Logf("%d requests, %d failed", sent.Load(), failed.Load())
	if failed.Load() > 0 {
		mu.Lock()
		t.Errorf("%d of %d requests failed during the rolling restart; first: %q", failed.Load(), sent.Load(), failures[:min(len(failures), 5)])
		mu.Unlock()
	}
}

// TestLostConnectionAnswersAtOnce: a request in flight when the gateway's
// server goes away cannot get its reply; it is answered 503 with
// Retry-After at once instead of waiting for the timeout.
func TestLostConnectionAnswersAtOnce(t *testing.T) {
	e := newEnv(t, proxy.Config{Routes: []proxy.RouteConfig{{Match: "GET /hang/{n}"}}, Timeout: 20 * time.Second})
	got := make(chan struct{}, 1)
	e.responder("hang.*.GET", func(m *nats.Msg) { got <- struct{}{} }) // never answers
	type result struct {
		resp *http.Response
		body string
		took time.Duration
	}
	res := make(chan result, 1)
	go func() {
		start := time.Now()
		resp, body := e.do("GET", "/hang/1", "", nil)
		res <- result{resp, body, time.Since(start)}
	}()
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the subscriber")
	}
	e.ns.Shutdown()
	r := <-res
	checkProblem(t, r.resp, r.body, http.StatusServiceUnavailable)
	if r.took > 10*time.Second {
		t.Errorf("answered after %s: the client waited for the timeout", r.took)
	}
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
