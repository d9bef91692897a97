package proxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/natsconn"
)

// A lane is a NATS connection that requests are sent on, with the inbox
// their replies come back to. The gateway has one, its primary, except
// while it hands its traffic off from a server that is going away.
type lane struct {
	nc       *nats.Conn
	inbox    *inbox
	inflight atomic.Int64
	// moving is set while the lane's connection is moved on purpose, with
	// nothing in flight: its disconnection is then no loss. nats.go reports
	// it later, on its callback goroutine, maybe after new requests have
	// gone out on the new server; those must not be failed.
	moving atomic.Bool
}

// newLane makes a lane on nc. When nc loses its server, requests waiting
// on it are answered at once: their replies would have come through the
// subscriptions on that server, so none can come.
func newLane(nc *nats.Conn) *lane {
	ln := &lane{nc: nc, inbox: newInbox(nc)}
	prev := nc.DisconnectErrHandler()
	nc.SetDisconnectErrHandler(func(c *nats.Conn, err error) {
		if prev != nil {
			prev(c, err)
		}
		if ln.moving.CompareAndSwap(true, false) {
			return
		}
		ln.inbox.connectionLost()
	})
	return ln
}

// acquire returns the lane for a new request, counted in flight on it
// until release. A lane counted is still the current one, so a handoff
// that finds none in flight on the old lane has none to wait for.
func (g *Gateway) acquire() *lane {
	for {
		ln := g.lane.Load()
		ln.inflight.Add(1)
		if g.lane.Load() == ln {
			return ln
		}
		ln.inflight.Add(-1)
	}
}

func (ln *lane) release() { ln.inflight.Add(-1) }

// handoffState runs at most one handoff at a time, within Gateway.Run.
type handoffState struct {
	mu      sync.Mutex
	ctx     context.Context // nil outside Run
	running bool
	wg      sync.WaitGroup
}

func (h *handoffState) start(ctx context.Context) {
	h.mu.Lock()
	h.ctx = ctx
	h.mu.Unlock()
}

// stop waits for a handoff under way; Run's context has ended it.
func (h *handoffState) stop() {
	h.mu.Lock()
	h.ctx = nil
	h.mu.Unlock()
	h.wg.Wait()
}

// LameDuck is called when the primary connection's server announces lame
// duck mode: it will stop, closing its clients in a while. The gateway
// moves before it is closed, so that no request in flight loses its
// reply: new requests go over a second connection to another server,
// and once none is left in flight on the primary, the primary reconnects
// elsewhere and takes the traffic back.
func (g *Gateway) LameDuck() {
	h := &g.handoff
	h.mu.Lock()
	defer h.mu.Unlock()
	if g.redial == nil || h.ctx == nil || h.running {
		return
	}
	h.running = true
	h.wg.Add(1)
	go func(ctx context.Context) {
		defer h.wg.Done()
		g.handOff(ctx)
		h.mu.Lock()
		h.running = false
		h.mu.Unlock()
	}(h.ctx)
}

func (g *Gateway) handOff(ctx context.Context) {
	primary := g.primary
	from := primary.nc.ConnectedServerId()
	sc, err := g.redial()
	if err != nil {
		g.log.Warn("NATS server entering lame duck mode; no other server to move to", "err", err)
		return
	}
	standby := newLane(sc)
	defer func() {
		g.lane.Store(primary)
		natsconn.Poll(ctx, g.longest(), func() bool { return standby.inflight.Load() == 0 })
		standby.inbox.close()
		sc.Close()
	}()
	g.lane.Store(standby)
	g.log.Info("NATS server entering lame duck mode: requests move to another server", "to", sc.ConnectedUrlRedacted())
	if !natsconn.Poll(ctx, g.longest(), func() bool { return primary.inflight.Load() == 0 }) {
		return
	}
	primary.moving.Store(true)
	if err := primary.nc.ForceReconnect(); err != nil {
		primary.moving.Store(false)
		return
	}
	// Back on the primary only once nats.go has reported the
	// disconnection (clearing moving), so that the report cannot be taken
	// for a loss of requests sent after the move.
	if !natsconn.Poll(ctx, time.Minute, func() bool {
		return primary.nc.IsConnected() && primary.nc.ConnectedServerId() != from && !primary.moving.Load()
	}) {
		primary.moving.Store(false)
		return
	}
	// The inbox's subscriptions are sent again on reconnecting; once
	// the server has them, replies to new requests find their way back.
	_ = primary.nc.FlushTimeout(5 * time.Second)
	g.log.Info("moved to another NATS server", "url", primary.nc.ConnectedUrlRedacted())
}

// longest is the longest a request may wait for its reply.
func (g *Gateway) longest() time.Duration {
	longest := g.timeout
	for _, r := range g.table.load() {
		longest = max(longest, r.timeout)
	}
	return longest + time.Second
}
