package natsconn

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/natstest"
)

// gatedConn is one end of a real TCP connection whose writes wait for the
// test to open a gate, so a test can hold the sender inside a send and
// see what gathers meanwhile.
type gatedConn struct {
	net.Conn
	gate    chan struct{} // closed by the test to let writes through
	entered chan struct{} // receives once per write that has begun
	closed  chan struct{}
	once    sync.Once
	writes  atomic.Int64
	fail    error // when set, every write fails with it
}

func (g *gatedConn) Write(p []byte) (int, error) {
	g.writes.Add(1)
	g.entered <- struct{}{}
	select {
	case <-g.gate:
	case <-g.closed:
		return 0, net.ErrClosed
	}
	if g.fail != nil {
		return 0, g.fail
	}
	return g.Conn.Write(p)
}

func (g *gatedConn) Close() error {
	g.once.Do(func() { close(g.closed) })
	return g.Conn.Close()
}

// tcpPair returns a gated client end and a channel that delivers
// everything the server end reads until the client closes.
func tcpPair(t *testing.T) (*gatedConn, <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(server)
		server.Close()
		got <- b
	}()
	g := &gatedConn{Conn: client, gate: make(chan struct{}), entered: make(chan struct{}, 100), closed: make(chan struct{})}
	t.Cleanup(func() { g.Close() })
	return g, got
}

func waitEntered(t *testing.T, g *gatedConn) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the sender never began a send")
	}
}

func TestCoalescedWritesKeepOrderAndShareASend(t *testing.T) {
	g, got := tcpPair(t)
	c := newCoalescingConn(g, time.Minute, 1<<20, 10*time.Second)
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	waitEntered(t, g) // the sender is now inside its send of "a"
	for _, s := range []string{"b", "c", "d", "e"} {
		if n, err := c.Write([]byte(s)); n != 1 || err != nil {
			t.Fatalf("Write(%q) = %d, %v while a send is under way", s, n, err)
		}
	}
	close(g.gate)
	// With nothing left to send, no goroutine stays behind for this
	// connection, closed or not.
	for deadline := time.Now().Add(10 * time.Second); !c.idle(); {
		if time.Now().After(deadline) {
			t.Fatal("the sender is still running with nothing to send")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if b := <-got; string(b) != "abcde" {
		t.Errorf("peer read %q, want abcde", b)
	}
	if n := g.writes.Load(); n != 2 {
		t.Errorf("%d sends for 5 writes, want 2: the four written during the first send go together", n)
	}
	if !c.idle() {
		t.Error("the sender goroutine is still running after Close")
	}
}

func TestCoalescingWriteWaitsWhenTheLimitIsReached(t *testing.T) {
	g, got := tcpPair(t)
	c := newCoalescingConn(g, 0, 4, 10*time.Second)
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	waitEntered(t, g)
	if _, err := c.Write([]byte("bcde")); err != nil { // pending is now at the limit
		t.Fatal(err)
	}
	returned := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte("f"))
		returned <- err
	}()
	select {
	case err := <-returned:
		t.Fatalf("Write past the limit returned (%v) while nothing could be sent", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(g.gate)
	if err := <-returned; err != nil {
		t.Fatalf("Write after the send: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != "abcdef" {
		t.Errorf("peer read %q, want abcdef", b)
	}
}

func TestCoalescingSendErrorReachesLaterWrites(t *testing.T) {
	g, got := tcpPair(t)
	g.fail = errors.New("broken pipe (test)")
	close(g.gate)
	c := newCoalescingConn(g, 0, 1<<20, 10*time.Second)
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatalf("first Write: %v (it only queues)", err)
	}
	for deadline := time.Now().Add(10 * time.Second); !c.idle(); { // the failed send ends the sender
		if time.Now().After(deadline) {
			t.Fatal("the sender is still running after its send failed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := c.Write([]byte("b")); !errors.Is(err, g.fail) {
		t.Errorf("Write after a failed send = %v, want %v", err, g.fail)
	}
	if b := <-got; len(b) != 0 {
		t.Errorf("peer read %q from a connection whose send failed", b)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close after a failed send: %v", err)
	}
}

func TestCoalescingCloseGivesUpOnAStuckSend(t *testing.T) {
	g, _ := tcpPair(t)
	c := newCoalescingConn(g, 0, 1<<20, 50*time.Millisecond)
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	waitEntered(t, g) // and the gate stays shut
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited past its grace period on a send that never ends")
	}
	if _, err := c.Write([]byte("b")); err == nil {
		t.Error("Write on a closed connection succeeded")
	}
}

// Through a real server: publishers on many goroutines, then Close with no
// Flush. Every message must arrive, in each publisher's order: Close sends
// what the coalescing connection still holds.
func TestCoalesceDeliversEverythingThroughNATS(t *testing.T) {
	ns := natstest.Run(t)
	sub := natstest.Connect(t, ns)
	const publishers, each = 8, 2000
	next := make([]int, publishers)
	var mu sync.Mutex
	var bad []string
	done := make(chan struct{})
	var count int
	s, err := sub.Subscribe("load.>", func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		var p, i int
		if _, err := fmt.Sscanf(string(m.Data), "%d %d", &p, &i); err != nil || p < 0 || p >= publishers {
			bad = append(bad, string(m.Data))
			return
		}
		if next[p] != i {
			bad = append(bad, fmt.Sprintf("publisher %d: got %d, want %d", p, i, next[p]))
		}
		next[p] = i + 1
		if count++; count == publishers*each {
			close(done)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SetPendingLimits(-1, -1)
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}

	nc, err := nats.Connect(ns.ClientURL(), Coalesce())
	if err != nil {
		t.Fatal(err)
	}
	// Request/reply works across it as well.
	if _, err := nc.Subscribe("echo", func(m *nats.Msg) { m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	if r, err := nc.Request("echo", []byte("ping"), 10*time.Second); err != nil || string(r.Data) != "ping" {
		t.Fatalf("request through a coalescing connection: %v %v", r, err)
	}
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				if err := nc.Publish(fmt.Sprintf("load.%d", p), fmt.Appendf(nil, "%d %d", p, i)); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	nc.Close()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		mu.Lock()
		t.Fatalf("%d of %d messages arrived", count, publishers*each)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("%d messages out of order or malformed, first: %s", len(bad), bad[0])
	}
}

// A coalescing connection survives the server going away: nats.go dials a
// new one when the server is back, and traffic flows again.
func TestCoalesceReconnects(t *testing.T) {
	ns := natstest.Run(t)
	port := ns.Addr().(*net.TCPAddr).Port
	nc, err := nats.Connect(ns.ClientURL(), Coalesce(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Subscribe("echo", func(m *nats.Msg) { m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	for deadline := time.Now().Add(10 * time.Second); nc.IsConnected(); {
		if time.Now().After(deadline) {
			t.Fatal("still connected after the server stopped")
		}
		time.Sleep(5 * time.Millisecond)
	}
	natstest.RunWith(t, &server.Options{Host: "127.0.0.1", Port: port})
	for deadline := time.Now().Add(20 * time.Second); ; {
		r, err := nc.Request("echo", []byte("again"), time.Second)
		if err == nil && string(r.Data) == "again" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer after the server came back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
