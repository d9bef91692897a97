package worker

import (
	"crypto/sha256"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/loadtest"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/wire"
)

// spin burns about d of CPU time on an idle core, as a handler that
// computes would: the amount of work is measured once, not slept.
type spin struct{ rounds int }

func calibrate(d time.Duration) spin {
	n, start := 0, time.Now()
	for time.Since(start) < d {
		spin{1}.run()
		n++
	}
	return spin{rounds: n}
}

func (s spin) run() {
	var sum [32]byte
	for range s.rounds {
		for range 100 {
			sum = sha256.Sum256(sum[:])
		}
	}
}

// TestCPUBoundOverloadKeepsServing: handlers that compute share the CPU,
// so at the default concurrency of 256 on a small machine each took
// hundreds of times its own work, the worker's own NATS traffic waited
// behind them, and every answer came after its deadline for as long as
// the load lasted. The worker now runs fewer handlers while goroutines
// wait long for a CPU, and refuses at once what it could not start in
// time, so it answers in time again while the load lasts.
//
// As in the gateway's overload test, outcomes are counted rather than
// timed: a busy machine makes the counts smaller; the collapse's is zero.
func TestCPUBoundOverloadKeepsServing(t *testing.T) {
	const (
		work    = 20 * time.Millisecond
		budget  = time.Second
		seconds = 6
	)
	cores := runtime.GOMAXPROCS(0)
	capacity := cores * int(time.Second/work) // requests/s on an idle machine
	rate := 3 * capacity
	total := rate * seconds
	interval := time.Second / time.Duration(rate)
	cpu := calibrate(work)
	ns := natstest.Run(t)
	addr := "127.0.0.1:" + strconv.Itoa(natstest.FreePort(t))
	w := New(Options{Name: "cpu", URL: ns.ClientURL(), Logger: quiet, HealthAddr: addr})
	if err := w.Handle("GET /hash", http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		cpu.run()
		io.WriteString(rw, "done")
	})); err != nil {
		t.Fatal(err)
	}
	run(t, ns, w)
	nc := natstest.Connect(t, ns)

	// Open loop: each request leaves on its schedule, answered or not.
	inTime := make([]bool, total)
	var answered, refused atomic.Int64
	_, wait := loadtest.OpenLoop(total, interval, func(i int) {
		rep, err := nc.RequestMsg(request("GET", "/hash", "", "", time.Now().Add(budget)), budget)
		if err != nil {
			return // no answer before the deadline
		}
		answered.Add(1)
		switch rep.Header.Get(wire.HeaderStatus) {
		case "":
			inTime[i] = string(rep.Data) == "done"
		case "503":
			refused.Add(1)
		}
	})
	wait()
	perSecond := make([]int, seconds)
	for i, ok := range inTime {
		if ok {
			perSecond[i/rate]++
		}
	}
	limit := metricValue(t, addr, "metro_worker_concurrency_limit")
	t.Logf("%d requests at %d/s, each %v of CPU, on %d cores (capacity %d/s): %d answered, %d of them refused at once; in time, by the second they were sent in: %v; the limit is now %v of %d",
		total, rate, work, cores, capacity, answered.Load(), refused.Load(), perSecond, limit, DefaultConcurrency)
	// An idle machine serves close to capacity each second (with the race
	// detector and other tests on 2 cores, 10 to 30); the collapse served
	// none after the first.
	if last := perSecond[seconds-2] + perSecond[seconds-1]; last < 3 {
		t.Errorf("%d requests served in time in the last two seconds: every answer came after its deadline", last)
	}
	if limit >= DefaultConcurrency {
		t.Errorf("concurrency limit %v: it never came down", limit)
	}
}

// TestBacklogPace: a saturated CPU cuts the limit to three quarters of the
// handlers running, not below the floor, and slots above it are given up
// as their handlers end; with CPU to spare and requests waiting it grows
// again, a new handler taking each new slot. A request that could not
// start before its deadline at the handlers' pace is refused.
func TestBacklogPace(t *testing.T) {
	b := newBacklog(16, 100, 1<<20)
	b.floor = 2
	msg := &nats.Msg{Subject: "s", Data: []byte("x")}
	for range 16 {
		if b.admit(msg, time.Time{}) != admitRun {
			t.Fatal("a free slot was not given")
		}
	}
	for range 10 {
		b.admit(msg, time.Time{})
	}
	b.pace(true)
	if b.limit != 12 {
		t.Fatalf("limit %d after a saturated sample with 16 running, want 12", b.limit)
	}
	for range 4 {
		if m, _ := b.next(time.Millisecond); m != nil {
			t.Fatal("a slot over the limit took a message")
		}
	}
	if b.busy != 12 {
		t.Fatalf("busy %d, want 12", b.busy)
	}
	for range 20 {
		b.pace(true)
	}
	if b.limit != b.floor {
		t.Fatalf("limit %d, want the floor %d", b.limit, b.floor)
	}
	b.pace(false) // requests wait: grow
	if b.limit != 3 {
		t.Fatalf("limit %d after a calm sample, want 3", b.limit)
	}
	for b.busy > 3 {
		b.next(time.Millisecond)
	}
	b.pace(false)
	if m, extra := b.next(time.Millisecond); m == nil || extra == nil || b.busy != 4 {
		t.Fatalf("after growing to %d: next %v extra %v busy %d; want two messages for 4 handlers", b.limit, m, extra, b.busy)
	}
	// At about a millisecond per handler, a request due in a microsecond
	// cannot start in time; one due in a minute can.
	if got := b.admit(msg, time.Now().Add(time.Microsecond)); got != admitLate {
		t.Errorf("a request due at once: %v, want refused as late", got)
	}
	if got := b.admit(msg, time.Now().Add(time.Minute)); got != admitQueue {
		t.Errorf("a request due in a minute: %v, want queued", got)
	}
}
