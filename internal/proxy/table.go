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
	lastSeen atomic.Int64
	metrics  *routeMetrics
}

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

// announce records the routes of one service seen now.
func (t *table) announce(s discovery.Service, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range s.Routes {
		t.addLocked(r, now)
	}
}

func (t *table) addLocked(r discovery.Route, now time.Time) *route {
	key := r.Key()
	if rt, ok := t.byKey[key]; ok {
		rt.lastSeen.Store(now.UnixNano())
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
	rt.lastSeen.Store(now.UnixNano())
	if t.newRoute != nil {
		t.newRoute(rt)
	}
	t.byKey[key] = rt
	t.publishLocked()
	return rt
}

// expire forgets announced routes unseen for longer than the TTL.
func (t *table) expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	changed := false
	for k, rt := range t.byKey {
		if !rt.declared && now.Sub(time.Unix(0, rt.lastSeen.Load())) > t.ttl {
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
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.subject == b.subject {
			// As in ServeMux, a route with a method beats one without.
			return a.method > b.method
		}
		return moreSpecific(a.toks, b.toks)
	})
}

// moreSpecific orders subscriptions token by token: a literal before "*",
// "*" before ">", so the most specific route is tried first.
func moreSpecific(a, b []string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		ra, rb := rank(a[i]), rank(b[i])
		if ra != rb {
			return ra < rb
		}
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) > len(b)
}

func rank(tok string) int {
	switch tok {
	case "*":
		return 1
	case ">":
		return 2
	}
	return 0
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

// live reports whether a worker may answer subj now: some matching route
// is declared (a plain subscriber, never announced) or was announced
// since since. Without one the gateway answers 503 itself instead of
// publishing: a subscriber that only watches (metro tap, nats sub) is
// interest to NATS, which then sends no "no responders" and the client
// would wait out the whole timeout.
func (rs routes) live(subj string, since int64) bool {
	for _, r := range rs {
		if (r.declared || r.lastSeen.Load() >= since) && matchTokens(r.toks, subj, false) && r.tailMethodMatches(subj) {
			return true
		}
	}
	return false
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
