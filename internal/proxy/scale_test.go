package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"

	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// lightInstance is one worker instance as the network sees it, without
// the SDK's pool and goroutines, so that a thousand fit in one test on a
// small machine: a queue subscription that answers its route, a
// subscription that answers $SRV.INFO with what an SDK worker announces,
// and the announcements an SDK worker sends when it starts and stops.
type lightInstance struct {
	nc   *nats.Conn
	info []byte
	subs []*nats.Subscription
}

func startLight(nc *nats.Conn, svc int) (*lightInstance, error) {
	name, path := fmt.Sprintf("svc%d", svc), fmt.Sprintf("/s%d/ping", svc)
	var eps []micro.EndpointInfo
	for _, m := range []string{"GET", "HEAD"} {
		eps = append(eps, micro.EndpointInfo{
			Name: m + "-ping", Subject: fmt.Sprintf("s%d.ping.%s", svc, m), QueueGroup: name,
			Metadata: map[string]string{discovery.MetaMethod: m, discovery.MetaPath: path},
		})
	}
	info, err := json.Marshal(micro.Info{
		ServiceIdentity: micro.ServiceIdentity{Name: name, ID: nuid.Next(), Version: "1.0.0",
			Metadata: map[string]string{discovery.ProtocolKey: discovery.Protocol}},
		Type: micro.InfoResponseType, Endpoints: eps,
	})
	if err != nil {
		return nil, err
	}
	in := &lightInstance{nc: nc, info: info}
	for _, ep := range eps {
		sub, err := nc.QueueSubscribe(ep.Subject, name, func(m *nats.Msg) {
			if svc := m.Header.Get("Metro-Service"); svc != "" && svc != name {
				return
			}
			_ = m.Respond([]byte("pong"))
		})
		if err != nil {
			return nil, err
		}
		in.subs = append(in.subs, sub)
	}
	sub, err := nc.Subscribe(discovery.InfoSubject, func(m *nats.Msg) { _ = m.Respond(info) })
	if err != nil {
		return nil, err
	}
	in.subs = append(in.subs, sub)
	// Announced once the server has the subscriptions, as the SDK does.
	if err := nc.Flush(); err != nil {
		return nil, err
	}
	return in, nc.Publish(discovery.UpSubject, info)
}

// stop leaves discovery, says goodbye and drains its route subscriptions
// (answering what the server already sent), in the SDK's order.
func (in *lightInstance) stop() {
	_ = in.subs[len(in.subs)-1].Unsubscribe()
	_ = in.nc.Publish(discovery.DownSubject, in.info)
	for _, s := range in.subs[:len(in.subs)-1] {
		_ = s.Drain()
	}
}

// TestThousandInstances: 1,000 worker instances (500 services of two
// replicas each, every service with a route of its own; lightInstance)
// and 10 gateways
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

	// Connected before the load starts: a connect's handshake has a short
	// timeout of its own.
	var gconns []*nats.Conn
	for range gateways {
		gconns = append(gconns, natstest.Connect(t, ns))
	}
	var gws []*proxy.Gateway
	var urls []string
	startGateway := func() {
		gw, srv := metrotest.StartGateway(t, gconns[len(gws)], proxy.Config{
			DiscoveryInterval: proxy.DefaultDiscoveryInterval,
			Logger:            quiet,
		})
		gws = append(gws, gw)
		urls = append(urls, srv.URL)
	}
	for range gateways / 2 {
		startGateway()
	}

	var started atomic.Int64
	start := func(svc int) (*lightInstance, error) { return startLight(wconns[started.Add(1)%conns], svc) }
	var mu sync.Mutex
	instances := make([][]*lightInstance, services)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, ins := range instances {
			for _, in := range ins {
				in.stop()
			}
		}
	})
	for svc := range services {
		for range replicas {
			in, err := start(svc)
			if err != nil {
				t.Fatal(err)
			}
			instances[svc] = append(instances[svc], in)
		}
	}
	for range gateways - gateways/2 {
		startGateway()
	}
	// Each service's GET route brings a HEAD route along.
	learn := time.Now()
	deadline := learn.Add(2 * time.Minute)
	for i, gw := range gws {
		for len(gw.Routes()) < 2*services {
			if time.Now().After(deadline) {
				t.Fatalf("gateway %d has %d routes, want %d", i, len(gw.Routes()), 2*services)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	t.Logf("every gateway routes all %d services after %v", services, time.Since(learn).Round(time.Millisecond))
	// Longer than an instance takes to go stale (three intervals) unless
	// the polls, which every gateway sends to every instance, keep it.
	run := 3*proxy.DefaultDiscoveryInterval + 2*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		// Spread over the run, so requests meet routes in every state.
		tick := time.NewTicker(run / 60)
		defer tick.Stop()
		for svc := 0; svc < 50; svc++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			mu.Lock()
			old := instances[svc][0]
			mu.Unlock()
			old.stop()
			in, err := start(svc)
			if err != nil {
				t.Errorf("restarting an instance of svc%d: %v", svc, err)
				return
			}
			mu.Lock()
			instances[svc][0] = in
			mu.Unlock()
		}
	})
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	// Longer than the gateway's own timeout: a request that no worker
	// answers comes back as a 504 and counts as failed; one that is only
	// slow on a starved machine does not.
	client := &http.Client{Timeout: 2 * proxy.DefaultTimeout}
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
