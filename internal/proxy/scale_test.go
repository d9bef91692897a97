package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
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

// TestThousandInstances: 1,000 worker instances (500 services of two
// replicas each, every service with a route of its own) and 10 gateways
// at the default discovery settings on one NATS server. Five gateways
// start before the workers and learn them from their announcements, five
// after, from one poll that 1,000 instances answer at once. Requests run
// for longer than an instance takes to go stale unless polls keep finding
// it, while one replica of 50 services after another restarts: no request
// may get a 503, since every service always has a live replica.
func TestThousandInstances(t *testing.T) {
	const (
		services = 500
		replicas = 2
		gateways = 10
		conns    = 20 // the instances' connections: one per instance would only cost the test file descriptors
	)
	ns := natstest.Run(t)
	var wconns []*nats.Conn
	for range conns {
		wconns = append(wconns, natstest.Connect(t, ns))
	}

	var gws []*proxy.Gateway
	var urls []string
	startGateway := func() {
		gw, srv := metrotest.StartGateway(t, natstest.Connect(t, ns), proxy.Config{
			DiscoveryInterval: proxy.DefaultDiscoveryInterval,
			Logger:            quiet,
		})
		gws = append(gws, gw)
		urls = append(urls, srv.URL)
	}
	for range gateways / 2 {
		startGateway()
	}

	type instance struct {
		cancel context.CancelFunc
		done   chan error
	}
	var started atomic.Int64
	start := func(svc int) *instance {
		w := metro.NewWorker(fmt.Sprintf("svc%d", svc),
			metro.WithConn(wconns[started.Add(1)%conns]), metro.WithLogger(quiet), metro.WithConcurrency(4))
		w.HandleFunc(fmt.Sprintf("GET /s%d/ping", svc), func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "pong") })
		ctx, cancel := context.WithCancel(context.Background())
		in := &instance{cancel: cancel, done: make(chan error, 1)}
		go func() { in.done <- w.Run(ctx) }()
		select {
		case <-w.Ready():
		case err := <-in.done:
			t.Fatalf("instance of svc%d stopped: %v", svc, err)
		}
		return in
	}
	stop := func(in *instance) {
		in.cancel()
		if err := <-in.done; err != nil {
			t.Errorf("instance: %v", err)
		}
	}
	var mu sync.Mutex
	instances := make([][]*instance, services)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		var wg sync.WaitGroup
		for _, ins := range instances {
			for _, in := range ins {
				wg.Go(func() { stop(in) })
			}
		}
		wg.Wait()
	})
	// Started (and stopped) many at a time: one after another, their
	// flushes and drains would take most of the test's time.
	var starting sync.WaitGroup
	sem := make(chan struct{}, 50)
	for svc := range services {
		for range replicas {
			sem <- struct{}{}
			starting.Go(func() {
				defer func() { <-sem }()
				in := start(svc)
				mu.Lock()
				instances[svc] = append(instances[svc], in)
				mu.Unlock()
			})
		}
	}
	starting.Wait()
	for range gateways - gateways/2 {
		startGateway()
	}
	// Each service's GET route brings a HEAD route along.
	deadline := time.Now().Add(30 * time.Second)
	for i, gw := range gws {
		for len(gw.Routes()) < 2*services {
			if time.Now().After(deadline) {
				t.Fatalf("gateway %d has %d routes, want %d", i, len(gw.Routes()), 2*services)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Longer than an instance takes to go stale (three intervals) unless
	// the polls, which every gateway sends to every instance, keep it.
	run := 3*proxy.DefaultDiscoveryInterval + 2*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for svc := 0; svc < 50 && ctx.Err() == nil; svc++ {
			mu.Lock()
			old := instances[svc][0]
			mu.Unlock()
			stop(old)
			in := start(svc)
			mu.Lock()
			instances[svc][0] = in
			mu.Unlock()
		}
	})
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	client := &http.Client{Timeout: 10 * time.Second}
	for c := range 4 {
		wg.Go(func() {
			// About 50 requests a second per client: enough to visit every
			// route on every gateway during the run, little enough to leave
			// the CPU to discovery.
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for n := c; ; n += 4 {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				svc := n * 7 % services
				resp, err := client.Get(fmt.Sprintf("%s/s%d/ping", urls[n%gateways], svc))
				sent.Add(1)
				if err != nil {
					t.Errorf("request: %v", err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("gateway %d, svc%d: %d %s", n%gateways, svc, resp.StatusCode, body))
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d requests failed; first: %v", f, sent.Load(), firstFailure.Load())
	}
	t.Logf("%d requests, none failed", sent.Load())
}
