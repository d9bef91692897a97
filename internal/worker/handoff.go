package worker

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/natsconn"
	"github.com/metropolis-dev/metro/internal/reply"
	"github.com/metropolis-dev/metro/internal/stream"
)

func (w *Worker) baseOptions() []nats.Option {
	return append([]nats.Option{
		nats.Name("metro worker " + w.opts.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectBufSize(8 << 20),
		natsconn.Coalesce(),
	}, w.opts.NATSOptions...)
}

// handOff moves the worker off a server that announced lame duck mode
// (it will close its clients soon), losing no request: a second
// connection to another server subscribes the endpoints first, so the
// queue group keeps this member, and the worker waits until the server it
// leaves knows of them; then the subscriptions on nc are
// drained (what the server already sent is served), nc reconnects to
// another server and subscribes again, and the second connection's
// subscriptions are drained and it is closed. Replies always leave
// through nc (Worker.respond), which buffers them while it reconnects.
// The calls the worker's Transport makes go over the second connection
// meanwhile, and nc moves only once none is waiting for its reply on it:
// that reply would come through nc's inbox, on the server it leaves.
// It returns the endpoint subscriptions on nc from now on.
func (w *Worker) handOff(ctx context.Context, primary *reply.Lane, subs []*nats.Subscription) []*nats.Subscription {
	nc := primary.Conn
	from := nc.ConnectedServerId()
	sc, err := nats.Connect(strings.Join(nc.Servers(), ","), w.baseOptions()...)
	if err != nil {
		w.log.Warn("NATS server entering lame duck mode; no other server to move to", "err", err)
		return subs
	}
	defer sc.Close()
	standby, err := w.subscribe(sc)
	if err == nil {
		err = sc.FlushTimeout(10 * time.Second)
	}
	if err != nil {
		w.log.Warn("NATS server entering lame duck mode; subscribing on another server", "err", err)
		return subs
	}
	defer drained(ctx, standby)
	// Until the server it leaves knows of the second connection's
	// subscriptions, a request on its way there finds no member of the
	// queue group once the first's are gone, and is lost.
	if !reached(ctx, sc, nc) {
		w.log.Warn("moving off a NATS server in lame duck mode: it has not heard of the new subscriptions; a request on its way there may be lost")
	}
	calls := reply.NewLane(sc)
	w.calls.Set(calls)
	defer func() {
		w.calls.Set(primary)
		calls.WaitIdle(ctx, time.Minute)
		calls.Close()
	}()
	w.log.Info("NATS server entering lame duck mode: moving to another server", "to", sc.ConnectedUrlRedacted())
	if !drained(ctx, subs) {
		return nil
	}
	if !primary.Move(ctx, from, time.Minute) {
		return nil
	}
	subs, err = w.subscribe(nc)
	if err == nil {
		// Also sends the inbox's subscriptions ahead of the calls that
		// go over nc again.
		err = nc.FlushTimeout(10 * time.Second)
	}
	if err != nil {
		w.log.Warn("subscribing again after moving server", "err", err)
		return subs
	}
	if !reached(ctx, nc, sc) { // likewise before the second's are drained
		w.log.Warn("moved to another NATS server, but the second connection's server has not heard of the subscriptions here; a request on its way there may be lost")
	}
	w.log.Info("moved to another NATS server", "url", nc.ConnectedUrlRedacted())
	return subs
}

// drained drains subs and waits until every message the server had sent
// them is handed to the pool.
func drained(ctx context.Context, subs []*nats.Subscription) bool {
	for _, s := range subs {
		_ = s.Drain()
	}
	return natsconn.Poll(ctx, time.Minute, func() bool {
		for _, s := range subs {
			if s.IsValid() {
				return false
			}
		}
		return true
	})
}

// reached waits until the server that pub is connected to routes to a
// subscription made now through sub: it then knows of every subscription
// made through sub before, since a server tells the others of its
// subscriptions in the order they were made. It gives up after a few
// seconds, or when ctx ends.
func reached(ctx context.Context, sub, pub *nats.Conn) bool {
	subject := stream.ProbeSubject(sub)
	got := make(chan struct{}, 1)
	s, err := sub.Subscribe(subject, func(*nats.Msg) {
		select {
		case got <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return false
	}
	defer s.Unsubscribe()
	if sub.FlushTimeout(5*time.Second) != nil {
		return false
	}
	return natsconn.Poll(ctx, 5*time.Second, func() bool {
		select {
		case <-got:
			return true
		default:
			_ = pub.Publish(subject, nil)
			return false
		}
	})
}
