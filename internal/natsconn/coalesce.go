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

// coalescingConn is a net.Conn whose writes are sent by its own goroutine.
// Reads and everything else go to the underlying connection.
type coalescingConn struct {
	net.Conn
	timeout time.Duration // per send; 0 means none
	limit   int
	grace   time.Duration // how long Close waits for pending data to go

	mu      sync.Mutex
	more    sync.Cond // signals the sender: data pending, or closing
	room    sync.Cond // signals writers: the pending buffer shrank
	pending []byte
	spare   []byte // the buffer last sent, reused for the next batch
	err     error  // first send error; every later Write returns it
	closing bool
	done    chan struct{} // closed when the sender has returned
}

func newCoalescingConn(c net.Conn, timeout time.Duration, limit int, grace time.Duration) *coalescingConn {
	cc := &coalescingConn{Conn: c, timeout: timeout, limit: limit, grace: grace, done: make(chan struct{})}
	cc.more.L, cc.room.L = &cc.mu, &cc.mu
	go cc.send()
	return cc
}

// Write queues p and returns at once unless limit bytes are already
// waiting to be sent.
func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && !c.closing && len(c.pending) >= c.limit {
		c.room.Wait()
	}
	switch {
	case c.err != nil:
		return 0, c.err
	case c.closing:
		return 0, net.ErrClosed
	}
	c.pending = append(c.pending, p...)
	c.more.Signal()
	return len(p), nil
}

// send is the connection's sender goroutine; it returns once the
// connection is closing with nothing left to send, or a send has failed.
func (c *coalescingConn) send() {
	defer close(c.done)
	c.mu.Lock()
	for {
		for len(c.pending) == 0 && !c.closing {
			c.more.Wait()
		}
		if len(c.pending) == 0 {
			c.mu.Unlock()
			return
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
		c.room.Broadcast()
		if err != nil {
			c.err = err
			c.mu.Unlock()
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
	c.mu.Lock()
	c.closing = true
	c.more.Signal()
	c.room.Broadcast()
	c.mu.Unlock()
	t := time.NewTimer(c.grace)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
	}
	err := c.Conn.Close()
	<-c.done // a send blocked past the grace period fails once closed
	if errors.Is(err, net.ErrClosed) {
		// The sender closed it after a failed send.
		return nil
	}
	return err
}
