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
}

// FromInfo reads the routes of one $SRV.INFO reply under prefix.
// Endpoints whose subject is not a route (no method token, wrong prefix)
// are left out: they cannot be reached over HTTP.
func FromInfo(info micro.Info, prefix string) Service {
	s := Service{Name: info.Name, ID: info.ID, Version: info.Version}
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

// Watch asks every service for its info every interval and calls fn with
// each reply, as it arrives, until ctx ends. The first request goes out at
// once. fn runs on one goroutine at a time.
func Watch(ctx context.Context, nc *nats.Conn, prefix string, every time.Duration, fn func(Service)) error {
	inbox := nc.NewRespInbox()
	ch := make(chan *nats.Msg, 256)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return fmt.Errorf("subscribing for service info: %w", err)
	}
	defer sub.Unsubscribe()
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
		case <-t.C:
			ask()
		case m := <-ch:
			var info micro.Info
			if err := json.Unmarshal(m.Data, &info); err != nil || info.ID == "" {
				continue // not a micro info reply; ignore
			}
			fn(FromInfo(info, prefix))
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
