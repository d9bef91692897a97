// Package discovery learns which routes running services offer, by asking
// every NATS service for its $SRV.INFO (the micro protocol). Metro workers
// announce each route in endpoint metadata; any other micro service is
// read by its endpoint subjects.
package discovery

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/metropolis-dev/metro/internal/subject"
)

// Endpoint metadata keys with which metro workers announce a route.
const (
	MetaMethod = "metro.method"
	MetaPath   = "metro.path"
)

// InfoSubject is where every micro service answers with its info.
const InfoSubject = "$SRV.INFO"

// Route is one route a service offers.
type Route struct {
	Method  string `json:"method"`  // "" for every method
	Pattern string `json:"pattern"` // ServeMux pattern, e.g. "GET /users/{id}"
	Subject string `json:"subject"` // the subscription, e.g. "users.*.GET"
}

// Key identifies a route across services: its method and subscription.
// Two services announcing "GET /users/{id}" and "GET /users/{uid}" offer
// the same route; the method is part of the key because a tail's
// subscription ("files.>") covers every method.
func (r Route) Key() string { return RouteKey(r.Method, r.Subject) }

// RouteKey is Route.Key for a method and subscription subject; a route
// for every method is "*" (the key travels in a header, whose leading
// white space would not survive).
func RouteKey(method, subject string) string {
	if method == "" {
		method = "*"
	}
	return method + " " + subject
}

// Service is one running service instance and its routes.
type Service struct {
	Name    string  `json:"name"`
	ID      string  `json:"id"`
	Version string  `json:"version"`
	Routes  []Route `json:"routes"`
	// Protocol is the wire protocol version the instance announces
	// (ProtocolKey); "" for a service that announces none.
	Protocol string `json:"protocol,omitempty"`
}

// Legacy reports whether the instance speaks protocol version 1 (or is
// no metro worker at all): it answers every request its routes match and
// cannot decline one that Metro-Service gives to another group.
func (s Service) Legacy() bool { return s.Protocol == "" || s.Protocol == "1" }

// Streams reports whether the instance reads streamed request bodies: it
// speaks protocol version 3 or later (PROTOCOL.md section 9).
func (s Service) Streams() bool {
	v, err := strconv.Atoi(s.Protocol)
	return err == nil && v >= 3
}

// FromInfo reads the routes of one $SRV.INFO reply under prefix.
// Endpoints whose subject is not a route (no method token, wrong prefix)
// are left out: they cannot be reached over HTTP.
func FromInfo(info micro.Info, prefix string) Service {
	s := Service{Name: info.Name, ID: info.ID, Version: info.Version, Protocol: info.Metadata[ProtocolKey]}
	for _, ep := range info.Endpoints {
		r, ok := routeOf(ep, prefix)
		if ok {
			s.Routes = append(s.Routes, r)
		}
	}
	return s
}

func routeOf(ep micro.EndpointInfo, prefix string) (Route, bool) {
	if m, p := ep.Metadata[MetaMethod], ep.Metadata[MetaPath]; p != "" {
		pattern := p
		if m != "" {
			pattern = m + " " + p
		}
		rt, err := subject.ParsePattern(pattern)
		if err != nil {
			return Route{}, false
		}
		sub, err := rt.Subscription(prefix)
		if err != nil || sub != ep.Subject {
			// Announced under another prefix, or metadata that does not
			// describe the subscription: not ours to route.
			return Route{}, false
		}
		return Route{Method: rt.Method, Pattern: rt.String(), Subject: sub}, true
	}
	rt, err := subject.RouteFromSubscription(prefix, ep.Subject)
	if err != nil {
		return Route{}, false
	}
	return Route{Method: rt.Method, Pattern: rt.String(), Subject: ep.Subject}, true
}

// Subjects on which metro workers announce themselves (PROTOCOL.md
// section 5): their $SRV.INFO reply when they start serving, and their
// identity when they stop, so that gateways learn of a change at once and
// poll only as a safety net.
const (
	UpSubject   = "$METRO.SERVICE.UP"
	DownSubject = "$METRO.SERVICE.DOWN"
)

// Watch asks every service for its info every interval and calls fn with
// each reply, as it arrives, until ctx ends. The first request goes out at
// once. fn runs on one goroutine at a time, never after Watch returns.
func Watch(ctx context.Context, nc *nats.Conn, prefix string, every time.Duration, fn func(Service)) error {
	return watch(ctx, nc, prefix, every, watchOptions{}, func(s Service, up bool) {
		if up {
			fn(s)
		}
	}, nil)
}

// Follow keeps reg current until ctx ends: it takes the announcements of
// services starting and stopping as they come, asks every service for its
// info at once and then every interval (which finds services that do not
// announce, and notices instances that ended without a word), and expires
// what it has not seen.
func Follow(ctx context.Context, nc *nats.Conn, prefix string, every time.Duration, reg *Registry) error {
	return follow(ctx, nc, prefix, every, reg, watchOptions{announced: true})
}

func follow(ctx context.Context, nc *nats.Conn, prefix string, every time.Duration, reg *Registry, o watchOptions) error {
	return watch(ctx, nc, prefix, every, o, func(s Service, up bool) {
		if up {
			reg.Seen(s, time.Now())
		} else {
			reg.Gone(s.ID, time.Now())
		}
	}, reg.Expire)
}

// maxDecoded bounds the replies a watch remembers decoded; past it, it
// starts afresh.
const maxDecoded = 20000

type watchOptions struct {
	announced   bool // take announcements too
	untilClosed bool // end when the connection is closed for good
}

func watch(ctx context.Context, nc *nats.Conn, prefix string, every time.Duration, o watchOptions, fn func(s Service, up bool), tick func(time.Time)) error {
	// Replies come in bursts (every instance answers one request at
	// once), so they are taken on a subscription's own goroutine as they
	// arrive; a bounded channel would drop what does not fit. mu and done
	// keep fn from running at once on two subscriptions, or after return.
	var mu sync.Mutex
	done := false
	// Most replies repeat one an instance sent before: decoding each
	// again would be most of what discovery costs with many instances.
	var cmu sync.Mutex
	decoded := map[string]Service{}
	handle := func(up bool) nats.MsgHandler {
		return func(m *nats.Msg) {
			cmu.Lock()
			s, ok := decoded[string(m.Data)]
			cmu.Unlock()
			if !ok {
				var info micro.Info
				if err := json.Unmarshal(m.Data, &info); err != nil || info.ID == "" {
					return // not a micro info reply; ignore
				}
				s = FromInfo(info, prefix)
				cmu.Lock()
				if len(decoded) >= maxDecoded {
					clear(decoded)
				}
				decoded[string(m.Data)] = s
				cmu.Unlock()
			}
			mu.Lock()
			defer mu.Unlock()
			if !done {
				fn(s, up)
			}
		}
	}
	var subs []*nats.Subscription
	defer func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
		mu.Lock()
		done = true
		mu.Unlock()
	}()
	subscribe := func(subj string, h nats.MsgHandler) error {
		sub, err := nc.Subscribe(subj, h)
		if err != nil {
			return fmt.Errorf("subscribing to %s for service info: %w", subj, err)
		}
		// A burst of replies waits in the client rather than being cut
		// off as a slow consumer.
		_ = sub.SetPendingLimits(-1, 256<<20)
		subs = append(subs, sub)
		return nil
	}
	inbox := nc.NewRespInbox()
	if err := subscribe(inbox, handle(true)); err != nil {
		return err
	}
	if o.announced {
		if err := subscribe(UpSubject, handle(true)); err != nil {
			return err
		}
		if err := subscribe(DownSubject, handle(false)); err != nil {
			return err
		}
	}
	ask := func() {
		// A failed publish (disconnected) is retried at the next tick.
		_ = nc.PublishRequest(InfoSubject, inbox, nil)
	}
	ask()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			if o.untilClosed && nc.IsClosed() {
				return nil
			}
			if tick != nil {
				mu.Lock()
				tick(now)
				mu.Unlock()
			}
			ask()
		}
	}
}

// Collect asks once and gathers the replies that arrive within wait,
// sorted by name and id.
func Collect(ctx context.Context, nc *nats.Conn, prefix string, wait time.Duration) ([]Service, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	byID := map[string]Service{}
	err := Watch(ctx, nc, prefix, wait+time.Second, func(s Service) { byID[s.ID] = s })
	if err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(byID))
	for _, s := range byID {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}
