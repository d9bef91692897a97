package proxy

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/reply"
)

// A lane is a NATS connection that requests are sent on, with the inbox
// their replies come back to (reply.Lane). The gateway has one, its
// primary, except while it hands its traffic off from a server that is
// going away.
type lane struct {
	*reply.Lane
	nc    *nats.Conn
	inbox inbox
}

// inbox is the lane's reply.Inbox under the name the request path uses.
type inbox struct{ *reply.Inbox }

func (ib inbox) request(ctx context.Context, msg *nats.Msg, deadline time.Time) (*nats.Msg, error) {
	return ib.Request(ctx, msg, deadline)
}

// newLane makes a lane on nc. When nc loses its server, requests waiting
// on it are answered at once: their replies would have come through the
// subscriptions on that server, so none can come.
func newLane(nc *nats.Conn) *lane {
	ln := reply.NewLane(nc)
	return &lane{Lane: ln, nc: nc, inbox: inbox{ln.Inbox}}
}

// acquire returns the lane for a new request, counted in flight on it
// until release. A lane counted is still the current one, so a handoff
// that finds none in flight on the old lane has none to wait for.
func (g *Gateway) acquire() *lane {
	for {
		ln := g.lane.Load()
		ln.Hold()
		if g.lane.Load() == ln {
			return ln
		}
		ln.Release()
	}
}

func (ln *lane) release() { ln.Release() }

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
		standby.WaitIdle(ctx, g.longest())
		standby.Close()
		sc.Close()
	}()
	g.lane.Store(standby)
	g.log.Info("NATS server entering lame duck mode: requests move to another server", "to", sc.ConnectedUrlRedacted())
	if !primary.Move(ctx, from, g.longest()) {
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
