package worker

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/leaktest"
	"github.com/metropolis-dev/metro/internal/natstest"
)

// testPool starts a pool whose serve, for a message with a Reply, waits
// until release[Reply] is closed, and reports each finished message's
// Subject on served. Only retire ends idle goroutines before stop.
func testPool(release map[string]chan struct{}) (p *pool, stop func(), served chan string) {
	served = make(chan string, 100)
	p, stop = startPool(func(m *nats.Msg) {
		if m.Reply != "" {
			<-release[m.Reply]
		}
		served <- m.Subject
	}, time.Hour)
	return p, stop, served
}

func idle(p *pool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

func TestPoolReusesGoroutines(t *testing.T) {
	p, stop, served := testPool(nil)
	for i := range 5 {
		p.dispatch(&nats.Msg{Subject: "one"})
		<-served
		// The goroutine parks after done; wait until it has.
		for deadline := time.Now().Add(5 * time.Second); idle(p) != 1; {
			if time.Now().After(deadline) {
				t.Fatalf("after message %d, %d idle goroutines, want 1", i, idle(p))
			}
			runtime.Gosched()
		}
	}
	stop()
	if n := idle(p); n != 0 {
		t.Errorf("%d idle goroutines after the pool closed", n)
	}
}

func TestPoolRetiresIdleAndEndsBusyOnClose(t *testing.T) {
	base := runtime.NumGoroutine()
	release := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{}), "c": make(chan struct{})}
	p, stop, served := testPool(release)
	for s := range release {
		p.dispatch(&nats.Msg{Subject: s, Reply: s})
	}
	close(release["a"])
	close(release["b"])
	<-served
	<-served
	for deadline := time.Now().Add(5 * time.Second); idle(p) != 2; {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle goroutines, want 2", idle(p))
		}
		runtime.Gosched()
	}
	p.retire(time.Now().Add(time.Hour)) // everyone idle is past it
	if n := idle(p); n != 0 {
		t.Fatalf("%d idle after retire, want 0", n)
	}
	leaktest.Settle(t, base+2) // the sweeper, and c still busy

	stop()
	close(release["c"]) // finishes after the pool closed: its goroutine ends
	<-served
	leaktest.Settle(t, base)
	if n := idle(p); n != 0 {
		t.Errorf("a goroutine parked in a closed pool")
	}
}

// A worker that has served requests leaves no goroutine behind when Run
// returns: not its handlers', nor its connection's.
func TestWorkerLeavesNoGoroutines(t *testing.T) {
	ns := natstest.Run(t)
	nc := natstest.Connect(t, ns)
	// The first request starts the requester's own reply subscription.
	_, _ = nc.Request("nobody.listens", nil, 5*time.Second)
	base := runtime.NumGoroutine()
	w := New(Options{Name: "leak", URL: ns.ClientURL(), Logger: quiet})
	for p, h := range handlers() {
		if err := w.Handle(p, h); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(ctx, t, w)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := nc.RequestMsg(request("GET", "/users/7", "", "", time.Now().Add(time.Minute)), 10*time.Second); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	leaktest.Settle(t, base)
}
