package worker

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// pool keeps the goroutines that have served a message for the next one.
// A fresh goroutine per message would start on a small stack and grow it
// (a copy) on every request, as building an *http.Request and running a
// handler reach deeper than a new stack allows; a goroutine that stays
// keeps its grown stack. Goroutines idle for longer than the idle period
// end, so a burst does not leave its peak behind.
//
// The pool does not bound concurrency: the worker's semaphore does, before
// a message is handed over.
type pool struct {
	serve func(*nats.Msg) // called for each message

	mu     sync.Mutex
	idle   []*hand // LIFO: the last to finish has the warmest stack
	closed bool
}

// hand is one pooled goroutine's mailbox; nil tells it to end.
type hand struct {
	ch    chan *nats.Msg
	since time.Time
}

// startPool returns a pool serving with serve, whose idle goroutines end
// after idle; stop closes it.
func startPool(serve func(*nats.Msg), idle time.Duration) (p *pool, stop func()) {
	p = &pool{serve: serve}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() { p.sweep(quit, idle); close(done) }()
	return p, func() { close(quit); <-done }
}

// dispatch has m served by an idle goroutine, or a new one.
func (p *pool) dispatch(m *nats.Msg) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		h := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		h.ch <- m
		return
	}
	p.mu.Unlock()
	go p.run(m)
}

func (p *pool) run(m *nats.Msg) {
	h := &hand{ch: make(chan *nats.Msg, 1)}
	for m != nil {
		p.serve(m)
		if !p.park(h) {
			return
		}
		m = <-h.ch
	}
}

// park puts h on the idle list, or reports false once the pool is closed.
func (p *pool) park(h *hand) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	h.since = time.Now()
	p.idle = append(p.idle, h)
	return true
}

// retire ends the goroutines idle since before cutoff. The oldest are at
// the bottom of the stack.
func (p *pool) retire(cutoff time.Time) {
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && p.idle[n].since.Before(cutoff) {
		p.idle[n].ch <- nil
		n++
	}
	p.idle = append(p.idle[:0], p.idle[n:]...)
	p.mu.Unlock()
}

// sweep retires goroutines idle for longer than idle, every idle, until
// stop is closed; then it closes the pool, ending every idle goroutine and
// each busy one as soon as it finishes.
func (p *pool) sweep(stop <-chan struct{}, idle time.Duration) {
	t := time.NewTicker(idle)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			p.retire(now.Add(-idle))
		case <-stop:
			p.mu.Lock()
			p.closed = true
			for _, h := range p.idle {
				h.ch <- nil
			}
			p.idle = nil
			p.mu.Unlock()
			return
		}
	}
}
