package reply

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/natsconn"
)

// A Lane is a NATS connection that requests are sent on, with the inbox
// their replies come back to, and a count of the requests in flight on it
// so that its connection can be moved to another server without failing
// one of them (Move).
type Lane struct {
	Conn  *nats.Conn
	Inbox *Inbox

	inflight atomic.Int64
	// moving is set while the connection is moved on purpose (Move) until
	// nats.go reports the disconnection, which it does later, on its
	// callback goroutine: with nothing in flight (movingIdle) the
	// disconnection is then no loss, and requests sent after the move
	// must not be failed by its report.
	moving atomic.Int32
}

const (
	notMoving  = iota
	movingIdle // nothing in flight: the disconnection fails nothing
	movingBusy // requests left in flight lose their replies
)

// NewLane makes a lane on nc. When nc loses its server, requests waiting
// on it are answered at once (wire.ErrConnectionLost): their replies
// would have come through the subscriptions on that server, so none can
// come. The lane chains nc's disconnect handler, keeping the one set
// before; a handler set on nc later replaces it.
func NewLane(nc *nats.Conn) *Lane {
	ln := &Lane{Conn: nc, Inbox: NewInbox(nc)}
	prev := nc.DisconnectErrHandler()
	nc.SetDisconnectErrHandler(func(c *nats.Conn, err error) {
		if prev != nil {
			prev(c, err)
		}
		if ln.moving.CompareAndSwap(movingIdle, notMoving) {
			return
		}
		ln.Inbox.ConnectionLost()
		// Cleared only now, so that Move returns after the requests it
		// left in flight are failed and before new ones are sent.
		ln.moving.CompareAndSwap(movingBusy, notMoving)
	})
	return ln
}

// Hold counts a request in flight on the lane until Release.
func (ln *Lane) Hold() { ln.inflight.Add(1) }

// Release ends what Hold began.
func (ln *Lane) Release() { ln.inflight.Add(-1) }

// Idle reports whether no request is in flight on the lane.
func (ln *Lane) Idle() bool { return ln.inflight.Load() == 0 }

// WaitIdle waits until no request is in flight, ctx ends or limit passes,
// and reports whether the lane is idle.
func (ln *Lane) WaitIdle(ctx context.Context, limit time.Duration) bool {
	return natsconn.Poll(ctx, limit, ln.Idle)
}

// Move moves the lane's connection off the server it is on, the one
// whose id is from, without failing a request: new requests must go over
// another lane meanwhile (a Switch). It waits up to limit for those in
// flight to end (any still waiting then lose their replies: they are
// answered at once), makes nats.go reconnect elsewhere, and waits until
// it is connected to another server and has reported the disconnection
// (so that the report is not taken for the loss of requests sent after
// the move). It reports whether the connection moved; the caller flushes
// it before sending requests over it again, so that the server has the
// inbox's subscriptions, sent again on reconnecting, before their replies
// come.
func (ln *Lane) Move(ctx context.Context, from string, limit time.Duration) bool {
	if !ln.WaitIdle(ctx, limit) && ctx.Err() != nil {
		return false
	}
	// Requests still in flight past the limit are failed by the
	// disconnection, as if the server had closed the connection.
	state := int32(movingBusy)
	if ln.Idle() {
		state = movingIdle
	}
	ln.moving.Store(state)
	if err := ln.Conn.ForceReconnect(); err != nil {
		ln.moving.Store(notMoving)
		return false
	}
	if !natsconn.Poll(ctx, time.Minute, func() bool {
		return ln.Conn.IsConnected() && ln.Conn.ConnectedServerId() != from && ln.moving.Load() == notMoving
	}) {
		ln.moving.Store(notMoving)
		return false
	}
	return true
}

// Close unsubscribes the lane's inbox; the connection is the caller's.
func (ln *Lane) Close() { ln.Inbox.Close() }

// A Switch holds the lane that new requests go over; a zero Switch has
// none.
type Switch struct {
	cur atomic.Pointer[Lane]
}

// Set sends new requests over ln (nil: none).
func (s *Switch) Set(ln *Lane) { s.cur.Store(ln) }

// Acquire returns the lane for a new request, held (Hold) until the
// caller releases it, or nil if there is none. A lane held is still the
// current one, so a move that finds a lane idle after switching away from
// it has nothing to wait for.
func (s *Switch) Acquire() *Lane {
	for {
		ln := s.cur.Load()
		if ln == nil {
			return nil
		}
		ln.Hold()
		if s.cur.Load() == ln {
			return ln
		}
		ln.Release()
	}
}
