package natsconn

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Coalesce is a nats.go option for the connections that carry metro's
// request traffic (the gateway's and the workers'). nats.go writes to the
// socket from its flusher goroutine while holding the connection's lock,
// one write per wake-up: under load that is a write of one or two messages
// per request, each costing a loopback or network send and a wake-up of the
// server, with every publisher stalled on the lock meanwhile. Through
// Coalesce, a write only appends to a buffer; one goroutine per connection
// sends whatever has gathered while its previous send was under way, so
// the busier the connection, the more each send carries.
//
// It dials with nats.go's default connect timeout (2s) and bounds each
// send by its default flusher timeout (1m): a custom dialer does not see
// the connection's other options.
func Coalesce() nats.Option {
	d := nats.GetDefaultOptions()
	return nats.SetCustomDialer(&coalescingDialer{
		dialer:       net.Dialer{Timeout: d.Timeout, KeepAlive: 30 * time.Second},
		writeTimeout: d.FlusherTimeout,
	})
}

type coalescingDialer struct {
	dialer       net.Dialer
	writeTimeout time.Duration
}

func (d *coalescingDialer) Dial(network, address string) (net.Conn, error) {
	c, err := d.dialer.Dial(network, address)
	if err != nil {
		return nil, err
	}
	return newCoalescingConn(c, d.writeTimeout, maxPending, closeGrace), nil
}

// maxPending is how much a connection holds unsent before Write waits: the
// size of nats.go's own reconnect buffer, so a stalled server slows
// publishers as it would without coalescing, rather than growing memory.
const maxPending = 8 << 20

// closeGrace bounds how long Close waits for what is pending to be sent.
const closeGrace = 5 * time.Second

// senderIdle is how long a connection's sender waits for more to send
// before it ends; the next write starts another.
const senderIdle = time.Second

// coalescingConn is a net.Conn whose writes are sent by a goroutine of its
// own. The sender stays while traffic flows (a new goroutine per send
// would grow a fresh stack each time) and ends once idle, so an abandoned
// connection holds no goroutine: nats.go drops a connection without
// closing it when the server refuses CONNECT on a reconnect, and leaves it
// to the collector. Reads and everything else go to the underlying
// connection.
type coalescingConn struct {
	net.Conn
	timeout time.Duration // per send; 0 means none
	limit   int
	grace   time.Duration // how long Close waits for pending data to go

	kick chan struct{} // wakes a waiting sender: data pending, or closing

	mu        sync.Mutex
	changed   sync.Cond // broadcast when pending shrinks or the sender ends
	pending   []byte
	spare     []byte // the buffer last sent, reused for the next batch
	sending   bool   // a sender goroutine is running
	err       error  // first send error; every later Write returns it
	closing   bool
	graceOver bool // Close has waited its grace period
}

func newCoalescingConn(c net.Conn, timeout time.Duration, limit int, grace time.Duration) *coalescingConn {
	cc := &coalescingConn{Conn: c, timeout: timeout, limit: limit, grace: grace, kick: make(chan struct{}, 1)}
	cc.changed.L = &cc.mu
	return cc
}

// Write queues p and returns at once unless limit bytes are already
// waiting to be sent.
func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && !c.closing && len(c.pending) >= c.limit {
		c.changed.Wait()
	}
	switch {
	case c.err != nil:
		return 0, c.err
	case c.closing:
		return 0, net.ErrClosed
	}
	c.pending = append(c.pending, p...)
	c.wake()
	return len(p), nil
}

// wake starts the sender, or wakes it if it waits. c.mu is held.
func (c *coalescingConn) wake() {
	if !c.sending {
		c.sending = true
		go c.send()
		return
	}
	select {
	case c.kick <- struct{}{}:
	default: // a wake-up is already due
	}
}

// send sends what is pending until the connection closes, a send fails,
// or nothing has come for senderIdle.
func (c *coalescingConn) send() {
	idle := time.NewTimer(senderIdle)
	defer idle.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.changed.Broadcast()
	for {
		for len(c.pending) == 0 {
			if c.closing {
				c.sending = false
				return
			}
			c.mu.Unlock()
			idle.Reset(senderIdle)
			timedOut := false
			select {
			case <-c.kick:
			case <-idle.C:
				timedOut = true
			}
			c.mu.Lock()
			if timedOut && len(c.pending) == 0 {
				c.sending = false
				return
			}
		}
		// Let whatever else is runnable go first: under load those are
		// goroutines about to publish, and their messages join this send.
		// With nothing else to run this returns at once.
		c.mu.Unlock()
		runtime.Gosched()
		c.mu.Lock()
		batch := c.pending
		c.pending = c.spare[:0]
		c.mu.Unlock()

		err := c.write(batch)

		c.mu.Lock()
		c.spare = batch
		c.changed.Broadcast()
		if err != nil {
			c.err = err
			c.pending = nil
			c.sending = false
			// A batch sent in part leaves half a protocol operation on
			// the wire: the connection is done, and closing it makes
			// nats.go's reader notice and reconnect.
			c.Conn.Close()
			return
		}
	}
}

func (c *coalescingConn) write(b []byte) error {
	if c.timeout > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
			return err
		}
	}
	_, err := c.Conn.Write(b)
	return err
}

// SetDeadline applies to reads only: writes are sent later, by the
// sender, under its own deadline.
func (c *coalescingConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

// SetWriteDeadline is accepted and ignored, for the same reason.
func (c *coalescingConn) SetWriteDeadline(time.Time) error { return nil }

// Close sends what is pending (waiting at most the grace period), then
// closes the connection.
func (c *coalescingConn) Close() error {
	t := time.AfterFunc(c.grace, func() {
		c.mu.Lock()
		c.graceOver = true
		c.changed.Broadcast()
		c.mu.Unlock()
	})
	defer t.Stop()
	c.mu.Lock()
	c.closing = true
	c.changed.Broadcast() // writers waiting for room give up
	if c.sending {
		c.wake()
	}
	for c.sending && !c.graceOver {
		c.changed.Wait()
	}
	c.mu.Unlock()
	err := c.Conn.Close()
	c.mu.Lock()
	for c.sending { // a send stuck past the grace period fails once closed
		c.changed.Wait()
	}
	c.mu.Unlock()
	if errors.Is(err, net.ErrClosed) {
		// The sender closed it after a failed send.
		return nil
	}
	return err
}

// idle reports whether no sender goroutine runs.
func (c *coalescingConn) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.sending
}
