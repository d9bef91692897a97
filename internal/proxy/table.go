package proxy

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/subject"
)

// route is one entry of the route table, keyed by method and
// subscription subject: two services announcing "GET /users/{id}" and
// "GET /users/{uid}" offer the same route. The method is part of the key
// because a tail's subscription covers the method token: "GET
// /files/{p...}" and "POST /files/{p...}" both subscribe files.>.
type route struct {
	key      string   // discovery.Route.Key, sent as Metro-Route
	subject  string   // "users.*.GET"
	toks     []string // its tokens
	method   string   // "" for every method
	pattern  string   // as announced, for metrics and logs
	timeout  time.Duration
	declared bool // from metro.yaml: never forgotten
	// live counts the instances serving the route now; goneAt is when it
	// last fell to zero, for the TTL.
	live   atomic.Int32
	goneAt atomic.Int64
	// owner is the service whose queue group runs the route's requests
	// (sent as Metro-Service), nil without a live instance.
	owner atomic.Pointer[string]
	// streams: every live instance of the owner reads streamed request
	// bodies (PROTOCOL.md section 9).
	streams atomic.Bool
	contest string // the last ownership warning logged, to log each once
	metrics *routeMetrics
}

// available reports whether a worker may answer the route now: it is
// declared (a plain subscriber, never announced) or a live instance
// announces it.
func (r *route) available() bool { return r.declared || r.live.Load() > 0 }

// routes is an immutable snapshot, sorted most specific first, so the
// first match is the one ServeMux would pick.
type routes []*route

// table holds the current snapshot; readers never lock.
type table struct {
	mu       sync.Mutex // serialises writers
	byKey    map[string]*route
	snapshot atomic.Pointer[routes]
	ttl      time.Duration
	timeouts map[string]time.Duration // per-route overrides by routeKey
	newRoute func(*route)             // called for each new route, under mu
	// contested is called under mu when the services announcing a route,
	// or its owner, change while more than one service announces it.
	contested func(*route, discovery.KeyState)
}

func newTable(ttl time.Duration) *table {
	t := &table{byKey: map[string]*route{}, ttl: ttl, timeouts: map[string]time.Duration{}}
	t.snapshot.Store(&routes{})
	return t
}

func (t *table) load() routes { return *t.snapshot.Load() }

// declare adds a route from configuration; it never expires. A declared
// route with a timeout also overrides the timeout of the announced one.
func (t *table) declare(r discovery.Route, timeout time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if timeout > 0 {
		t.timeouts[r.Key()] = timeout
	}
	rt := t.addLocked(r, time.Now())
	rt.declared = true
}

// update applies the new state of one route from the registry of live
// instances (discovery.Registry.OnChange).
func (t *table) update(st discovery.KeyState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	rt, ok := t.byKey[st.Route.Key()]
	if !ok {
		if st.Instances == 0 {
			return
		}
		rt = t.addLocked(st.Route, now)
	}
	if rt.live.Swap(int32(st.Instances)) > 0 && st.Instances == 0 {
		rt.goneAt.Store(now.UnixNano())
	}
	// The owner is named even when one service alone announces the
	// route: an instance of another service that has just subscribed,
	// and that no gateway knows yet, then declines instead of running
	// the request a second time.
	rt.streams.Store(st.Streams)
	if owner := st.Owner; owner == "" {
		rt.owner.Store(nil)
	} else if o := rt.owner.Load(); o == nil || *o != owner {
		rt.owner.Store(&owner)
	}
	if !st.Contested() {
		rt.contest = ""
		return
	}
	owner := st.Owner
	if c := strings.Join(st.Services, ",") + " " + owner; c != rt.contest {
		rt.contest = c
		if t.contested != nil {
			t.contested(rt, st)
		}
	}
}

func (t *table) addLocked(r discovery.Route, now time.Time) *route {
	key := r.Key()
	if rt, ok := t.byKey[key]; ok {
		return rt
	}
	rt := &route{
		key:     key,
		subject: r.Subject,
		toks:    strings.Split(r.Subject, "."),
		method:  r.Method,
		pattern: r.Pattern,
		timeout: t.timeouts[key],
	}
	rt.goneAt.Store(now.UnixNano())
	if t.newRoute != nil {
		t.newRoute(rt)
	}
	t.byKey[key] = rt
	// Inserted in place rather than re-sorted: with many services, routes
	// arrive one announcement at a time, and a sort for each would cost
	// the square of their number.
	old := t.load()
	i := sort.Search(len(old), func(i int) bool { return before(rt, old[i]) })
	rs := make(routes, 0, len(old)+1)
	rs = append(append(append(rs, old[:i]...), rt), old[i:]...)
	t.snapshot.Store(&rs)
	return rt
}

// expire forgets announced routes that no live instance has served for
// longer than the TTL.
func (t *table) expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	changed := false
	for k, rt := range t.byKey {
		if !rt.declared && rt.live.Load() == 0 && now.Sub(time.Unix(0, rt.goneAt.Load())) > t.ttl {
			delete(t.byKey, k)
			changed = true
		}
	}
	if changed {
		t.publishLocked()
	}
}

func (t *table) publishLocked() {
	rs := make(routes, 0, len(t.byKey))
	for _, rt := range t.byKey {
		rs = append(rs, rt)
	}
	sortRoutes(rs)
	t.snapshot.Store(&rs)
}

// sortRoutes orders rs most specific first.
func sortRoutes(rs routes) {
	sort.Slice(rs, func(i, j int) bool { return before(rs[i], rs[j]) })
}

// before orders the route table: the route ServeMux would prefer first.
func before(a, b *route) bool {
	if a.subject == b.subject {
		// As in ServeMux, a route with a method beats one without.
		return a.method > b.method
	}
	return discovery.TokensMoreSpecific(a.toks, b.toks)
}

// match returns the route for subj, a request subject. When none matches,
// allow lists the methods of routes whose path matches, for a 405.
func (rs routes) match(subj string) (rt *route, allow []string) {
	for _, r := range rs {
		if matchTokens(r.toks, subj, false) && r.tailMethodMatches(subj) {
			return r, nil
		}
	}
	for _, r := range rs {
		if r.method != "" && matchTokens(r.toks, subj, true) {
			allow = append(allow, r.method)
		}
	}
	return nil, allow
}

// matchAvailable returns the most specific route for subj that a worker
// may answer now. When the most specific match has no live instance (its
// worker stopped), the request goes to the next route that matches, as a
// ServeMux without the removed pattern would route it: naming the dead
// route in Metro-Route would leave the live worker declining it.
func (rs routes) matchAvailable(subj string) *route {
	for _, r := range rs {
		if r.available() && matchTokens(r.toks, subj, false) && r.tailMethodMatches(subj) {
			return r
		}
	}
	return nil
}

// tailMethodMatches checks the method of a tail route, whose ">" also
// covers the method token. HEAD is served by GET routes, as in ServeMux
// (workers do so too).
func (r *route) tailMethodMatches(subj string) bool {
	if r.method == "" || r.toks[len(r.toks)-1] != ">" {
		return true
	}
	m := subj[strings.LastIndexByte(subj, '.')+1:]
	return m == r.method || m == "HEAD" && r.method == "GET"
}

// matchTokens matches a subscription's tokens against a subject with NATS
// wildcard rules; with anyMethod the last token of each is not compared.
func matchTokens(toks []string, subj string, anyMethod bool) bool {
	for i, t := range toks {
		if t == ">" {
			return subj != ""
		}
		if subj == "" {
			return false
		}
		var tok string
		if j := strings.IndexByte(subj, '.'); j >= 0 {
			tok, subj = subj[:j], subj[j+1:]
			if i == len(toks)-1 {
				return false // the subject is longer
			}
		} else {
			tok, subj = subj, ""
			if i != len(toks)-1 {
				return false
			}
		}
		if anyMethod && i == len(toks)-1 {
			return true
		}
		if t != "*" && t != tok {
			return false
		}
	}
	return subj == ""
}

// routeOf converts a configured pattern into a table route.
func routeOf(pattern, prefix string) (discovery.Route, error) {
	r, err := subject.ParsePattern(pattern)
	if err != nil {
		return discovery.Route{}, err
	}
	sub, err := r.Subscription(prefix)
	if err != nil {
		return discovery.Route{}, err
	}
	return discovery.Route{Method: r.Method, Pattern: r.String(), Subject: sub}, nil
}
