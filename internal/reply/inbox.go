// Package reply sends requests over NATS and waits for their replies: a
// request whose connection drops is answered at once, since no reply can
// come, and the traffic moves off a server that is going away (lame duck
// mode) without failing a request. The gateway and metro.Transport both
// send their requests through it.
package reply

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/wire"
)

// Inbox delivers replies to requests with less work per
// request than nats.go's Request: each request in flight borrows a slot, a
// long-lived channel subscription on "_INBOX.<id>.<slot>.*" into which the
// connection's read loop hands the reply directly. nats.go's own request
// path adds, per request, a channel and a map entry under the connection
// lock (which every publish also takes) and a hop through one goroutine
// that serves all replies; under load those showed in the gateway's
// profile. Slots are reused: a generation number in the reply subject
// tells a late reply to an earlier request (one that timed out) from the
// answer to the current one.
type Inbox struct {
	nc   *nats.Conn
	base string // "_INBOX.<nuid>."

	mu   sync.Mutex
	free []*slot
	all  []*slot
	next int // the last slot number taken

	// lost is closed when the connection drops (and replaced by a fresh
	// one): a reply to a request in flight then cannot come, since the
	// subscription it would arrive on was on the server that is gone.
	lost atomic.Pointer[chan struct{}]
}

// slotBuffer holds replies that arrive while nobody waits on a slot:
// extra answers from overlapping responders, late ones after a timeout.
// nats.go drops a message that finds a channel full, so this leaves room.
const slotBuffer = 64

type slot struct {
	sub    *nats.Subscription
	ch     chan *nats.Msg
	prefix string // "_INBOX.<nuid>.<n>."
	gen    uint64
	timer  *time.Timer
}

// NewInbox makes an inbox on nc; a Lane makes its own.
func NewInbox(nc *nats.Conn) *Inbox {
	ib := &Inbox{nc: nc, base: nc.NewInbox() + "."}
	lost := make(chan struct{})
	ib.lost.Store(&lost)
	return ib
}

// ConnectionLost ends the wait of every request in flight with
// wire.ErrConnectionLost.
func (ib *Inbox) ConnectionLost() {
	fresh := make(chan struct{})
	close(*ib.lost.Swap(&fresh))
}

func (ib *Inbox) get() (*slot, error) {
	ib.mu.Lock()
	if n := len(ib.free); n > 0 {
		s := ib.free[n-1]
		ib.free = ib.free[:n-1]
		ib.mu.Unlock()
		return s, nil
	}
	// The slot's number is taken under the lock: two slots on one
	// subject would each receive the other's replies.
	ib.next++
	n := ib.next
	ib.mu.Unlock()
	s := &slot{ch: make(chan *nats.Msg, slotBuffer), prefix: ib.base + strconv.Itoa(n) + "."}
	sub, err := ib.nc.ChanSubscribe(s.prefix+"*", s.ch)
	if err != nil {
		return nil, fmt.Errorf("subscribing for replies: %w", err)
	}
	s.sub = sub
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	ib.mu.Lock()
	ib.all = append(ib.all, s)
	ib.mu.Unlock()
	return s, nil
}

func (ib *Inbox) put(s *slot) {
	s.gen++ // whatever still arrives for this request is stale now
	ib.mu.Lock()
	ib.free = append(ib.free, s)
	ib.mu.Unlock()
}

// Request publishes msg and waits for its reply until deadline (none if
// zero) or until ctx ends. Errors are nats.go's or wire.ErrConnectionLost,
// so wire.ErrorStatus maps them.
func (ib *Inbox) Request(ctx context.Context, msg *nats.Msg, deadline time.Time) (*nats.Msg, error) {
	s, err := ib.get()
	if err != nil {
		return nil, err
	}
	defer ib.put(s)
	lost := *ib.lost.Load()
	var gbuf [20]byte
	gen := strconv.AppendUint(gbuf[:0], s.gen, 10)
	msg.Reply = s.prefix + string(gen)
	// Replies to earlier requests on this slot (late ones, or a second
	// responder's) pile up while it is free; a full channel would make
	// nats.go drop this request's reply.
	for len(s.ch) > 0 {
		<-s.ch
	}
	if err := ib.nc.PublishMsg(msg); err != nil {
		return nil, err
	}
	if !deadline.IsZero() {
		s.timer.Reset(time.Until(deadline))
		defer s.timer.Stop()
	}
	for {
		select {
		case m := <-s.ch:
			if len(m.Subject) != len(msg.Reply) || m.Subject != msg.Reply {
				continue // a late reply to an earlier request on this slot
			}
			if wire.IsNoResponders(m) {
				return nil, nats.ErrNoResponders
			}
			return m, nil
		case <-s.timer.C:
			return nil, nats.ErrTimeout
		case <-lost:
			return nil, wire.ErrConnectionLost
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close unsubscribes every slot.
func (ib *Inbox) Close() {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	for _, s := range ib.all {
		_ = s.sub.Unsubscribe()
	}
}
