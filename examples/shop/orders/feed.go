package orders

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// DefaultKeepalive is how often an idle feed sends a comment, so that
// proxies and load balancers in front of the gateway do not take the
// open response for a dead one.
const DefaultKeepalive = 15 * time.Second

// feedBuffer is how many orders a feed client may fall behind before it is
// dropped. Placing an order never waits for a slow reader: a client that
// lags that far is cut off, and its EventSource reconnects with
// Last-Event-ID and catches up from the stored orders.
const feedBuffer = 64

// feedMargin is how long before its deadline a feed ends by itself.
const feedMargin = 2 * time.Second

// feed streams the orders placed as server-sent events (text/event-stream),
// one event per order the moment it is placed, until the client goes.
//
// Every write is flushed: through metro each flush travels to the gateway
// as a part of a streamed reply, which the gateway passes on at once. The
// feed lives in this process's memory, so with more than one orders
// replica a client sees only the orders its own replica took; the shop
// runs one (metro.yaml), as its orders live in memory too.
func (d *Desk) feed(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	// nginx (an Ingress controller, say) buffers responses unless told
	// not to; events must pass at once.
	h.Set("X-Accel-Buffering", "no")

	// An EventSource that reconnects names the last event it saw; the
	// orders placed since are sent first, so a reconnect loses none.
	after, _ := strconv.Atoi(r.Header.Get("Last-Event-ID"))
	events, missed := d.subscribe(after)
	defer d.unsubscribe(events)

	// The comment sends the headers now: a client knows the feed is open
	// before the first order.
	fmt.Fprint(w, ": orders as they are placed\n\n")
	for _, o := range missed {
		writeEvent(w, o)
	}
	if rc.Flush() != nil {
		return
	}
	every := d.Keepalive
	if every <= 0 {
		every = DefaultKeepalive
	}
	keepalive := time.NewTicker(every)
	defer keepalive.Stop()
	// At the route's timeout the gateway cuts the stream, and the client
	// sees a broken response. Ending a moment before lets it end whole;
	// an EventSource then reconnects and carries on from its last event.
	var ending <-chan time.Time
	if deadline, ok := r.Context().Deadline(); ok {
		end := time.NewTimer(time.Until(deadline) - feedMargin)
		defer end.Stop()
		ending = end.C
	}
	for {
		select {
		case <-r.Context().Done():
			return // the client went
		case <-ending:
			return
		case <-d.Closing:
			return
		case o, ok := <-events:
			if !ok {
				return // too far behind: dropped
			}
			writeEvent(w, o)
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
		}
		// A client that reads slowly makes this block (the stream's
		// window is full) rather than the gateway hold what it has not
		// read; an error means the client is gone.
		if rc.Flush() != nil {
			return
		}
	}
}

// writeEvent writes one order as an event whose id is the order's.
func writeEvent(w http.ResponseWriter, o Order) {
	b, _ := json.Marshal(o) // one line: JSON strings escape newlines
	fmt.Fprintf(w, "id: %s\nevent: order\ndata: %s\n\n", o.ID, b)
}

// subscribe registers a feed client and returns, with its channel, the
// orders placed after the one numbered after (none when after is 0), in
// order. Both happen under the lock that numbers orders, so each order
// is either among them or sent on the channel, never both.
func (d *Desk) subscribe(after int) (chan Order, []Order) {
	ch := make(chan Order, feedBuffer)
	d.mu.Lock()
	defer d.mu.Unlock()
	var missed []Order
	for n := after + 1; after > 0 && n <= d.next; n++ {
		if o, ok := d.orders[strconv.Itoa(n)]; ok {
			missed = append(missed, o)
		}
	}
	if d.feeds == nil {
		d.feeds = map[chan Order]bool{}
	}
	d.feeds[ch] = true
	return ch, missed
}

func (d *Desk) unsubscribe(ch chan Order) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.feeds[ch] {
		delete(d.feeds, ch)
		close(ch)
	}
}

// announce sends a new order to every feed client; d.mu is held, so
// clients get orders in the order they were numbered.
func (d *Desk) announce(o Order) {
	for ch := range d.feeds {
		select {
		case ch <- o:
		default:
			delete(d.feeds, ch)
			close(ch)
		}
	}
}
