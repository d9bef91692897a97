package worker

import (
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// backlog admits request messages to the handlers: up to limit run at
// once, up to maxMsgs more (and maxBytes of them) wait in arrival order,
// and what comes beyond that is refused at once. A bounded wait is what
// keeps an overloaded worker useful: an unbounded one holds every request
// until its client has given up, and the worker then spends its time on
// answers nobody reads, long after the load is gone.
//
// How many handlers run at once adapts, between floor and max, to the CPU
// (see cpuGuard): fewer while runnable goroutines wait long for a CPU,
// more again once they do not and requests wait. And a request is not
// queued when, by the handlers' recent pace, its turn would come too late
// to finish before its deadline: a queue of requests that cannot be
// served in time is the collapse over again, each waiting out its time
// behind the others.
type backlog struct {
	max, floor, maxMsgs, maxBytes int

	mu    sync.Mutex
	limit int         // handlers allowed to run now
	busy  int         // handlers running
	ring  []*nats.Msg // waiting messages, oldest at head
	head  int
	n     int
	bytes int
	// took is a moving average of how long handlers take.
	took time.Duration
	// turnedAway: a request was refused since the last pace, so more
	// handlers are wanted though none may wait.
	turnedAway bool
}

func newBacklog(limit, maxMsgs, maxBytes int) *backlog {
	return &backlog{limit: limit, max: limit, floor: min(limit, max(runtime.GOMAXPROCS(0), 1)), maxMsgs: maxMsgs, maxBytes: maxBytes}
}

// pace adapts the limit to the CPU: saturated, it falls to three quarters
// of the handlers running (so the cut bites at once), not below floor;
// otherwise, while requests wait or were refused, it grows by an eighth.
func (b *backlog) pace(saturated bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case saturated:
		b.limit = max(b.floor, min(b.limit, b.busy)*3/4)
	case (b.n > 0 || b.turnedAway) && b.limit < b.max:
		b.limit = min(b.max, b.limit+max(1, b.limit/8))
	}
	b.turnedAway = false
}

// current is the limit now, for the metrics.
func (b *backlog) current() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit
}

// admission is what admit decided for a message.
type admission int

const (
	admitRun   admission = iota // a handler slot is the caller's: serve it now
	admitQueue                  // waiting; next hands it to a handler
	admitShed                   // no room: the caller must refuse it
	admitLate                   // it would start too late: refuse it
)

// admit takes m, due by deadline (zero: none), into a free handler slot
// or the queue, or refuses it.
func (b *backlog) admit(m *nats.Msg, deadline time.Time) admission {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.busy < b.limit {
		b.busy++
		return admitRun
	}
	size := m.Size()
	if b.n >= b.maxMsgs || b.bytes+size > b.maxBytes {
		b.turnedAway = true
		return admitShed
	}
	if !deadline.IsZero() && b.took > 0 {
		// The rounds of handlers it would wait for, and its own.
		if time.Now().Add(time.Duration(b.n/b.limit+2) * b.took).After(deadline) {
			b.turnedAway = true
			return admitLate
		}
	}
	if b.n == len(b.ring) {
		b.grow()
	}
	b.ring[(b.head+b.n)%len(b.ring)] = m
	b.n++
	b.bytes += size
	return admitQueue
}

// grow doubles the ring, up to maxMsgs, so an idle worker holds a small one.
func (b *backlog) grow() {
	ring := make([]*nats.Msg, min(max(2*len(b.ring), 16), b.maxMsgs))
	for i := range b.n {
		ring[i] = b.ring[(b.head+i)%len(b.ring)]
	}
	b.ring, b.head = ring, 0
}

// next is called by a handler slot done with a message, which a handler
// ran for took (0: it was dropped unserved, as expired or another's): it
// returns the oldest waiting message for it to serve in the same slot, or
// nil after freeing the slot; extra is a second one for a new handler
// when the limit has grown.
func (b *backlog) next(took time.Duration) (m, extra *nats.Msg) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if took > 0 {
		if b.took == 0 {
			b.took = took
		} else {
			b.took += (took - b.took) / 8
		}
	}
	if b.n == 0 || b.busy > b.limit {
		b.busy--
		return nil, nil
	}
	m = b.pop()
	if b.n > 0 && b.busy < b.limit {
		b.busy++
		extra = b.pop()
	}
	return m, extra
}

func (b *backlog) pop() *nats.Msg {
	m := b.ring[b.head]
	b.ring[b.head] = nil
	b.head = (b.head + 1) % len(b.ring)
	b.n--
	b.bytes -= m.Size()
	return m
}

// waiting is the number of queued messages.
func (b *backlog) waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}
