package worker

import (
	"sync"

	"github.com/nats-io/nats.go"
)

// backlog admits request messages to the handlers: up to limit run at
// once, up to maxMsgs more (and maxBytes of them) wait in arrival order,
// and what comes beyond that is refused at once. A bounded wait is what
// keeps an overloaded worker useful: an unbounded one holds every request
// until its client has given up, and the worker then spends its time on
// answers nobody reads, long after the load is gone.
type backlog struct {
	limit, maxMsgs, maxBytes int

	mu    sync.Mutex
	busy  int         // handlers running
	ring  []*nats.Msg // waiting messages, oldest at head
	head  int
	n     int
	bytes int
}

func newBacklog(limit, maxMsgs, maxBytes int) *backlog {
	return &backlog{limit: limit, maxMsgs: maxMsgs, maxBytes: maxBytes}
}

// admission is what admit decided for a message.
type admission int

const (
	admitRun   admission = iota // a handler slot is the caller's: serve it now
	admitQueue                  // waiting; next hands it to a handler
	admitShed                   // no room: the caller must refuse it
)

// admit takes m into a free handler slot or the queue, or refuses it.
func (b *backlog) admit(m *nats.Msg) admission {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.busy < b.limit {
		b.busy++
		return admitRun
	}
	size := m.Size()
	if b.n >= b.maxMsgs || b.bytes+size > b.maxBytes {
		return admitShed
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

// next is called by a handler that has finished: it returns the oldest
// waiting message for it to serve in the same slot, or nil after freeing
// the slot.
func (b *backlog) next() *nats.Msg {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n == 0 {
		b.busy--
		return nil
	}
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
