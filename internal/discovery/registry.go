package discovery

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/metropolis-dev/metro/internal/subject"
)

// ProtocolKey is the service metadata key with which a worker says which
// version of the wire protocol (PROTOCOL.md) it speaks. A service without
// it speaks version 1.
const ProtocolKey = "metro.protocol"

// Protocol is the version a worker of this module announces.
const Protocol = "3"

// KeyState is what the registry knows of one route key now.
type KeyState struct {
	Route Route
	// Instances counts the live instances that announce the route.
	Instances int
	// Services are the names of the services with a live instance
	// announcing the route, sorted.
	Services []string
	// Owner is the service whose queue group runs the route's requests
	// (OwnerOf); "" without live instances.
	Owner string
	// Legacy lists the services among Services that speak protocol
	// version 1 and so cannot decline a request meant for another group.
	Legacy []string
	// Streams reports whether every live instance of the owner reads
	// streamed request bodies (protocol version 3, PROTOCOL.md section 9).
	Streams bool
}

// Contested reports whether more than one service announces the route.
func (k KeyState) Contested() bool { return len(k.Services) > 1 }

// Enforced reports whether a request on the route runs once: at most one
// of the services announcing it cannot decline it.
func (k KeyState) Enforced() bool { return len(k.Legacy) <= 1 }

// OwnerOf decides which of the services announcing one route runs its
// requests: a service speaking protocol version 1 if there is one (it
// cannot decline, so any other choice would run the request twice), and
// among those candidates the least name in byte order. The rule depends
// on the set of services alone, so every gateway and caller that sees the
// same services picks the same owner.
func OwnerOf(services, legacy []string) string {
	cands := services
	if len(legacy) > 0 {
		cands = legacy
	}
	if len(cands) == 0 {
		return ""
	}
	return slices.Min(cands)
}

type instance struct {
	name    string
	legacy  bool
	streams bool
	keys    []string
	seen    time.Time
}

type keyEntry struct {
	route    Route
	services map[string]int // name -> live instances announcing the key
	legacy   map[string]int // name -> those of them speaking version 1
	// flat counts, by name, those that read no streamed request bodies.
	flat map[string]int
}

// Registry keeps the live instances of every service and, from them, the
// state of every route: how many instances serve it and which service
// owns it. It is fed by announcements and poll replies (Follow) and safe
// for concurrent use.
type Registry struct {
	mu         sync.Mutex
	staleAfter time.Duration
	instances  map[string]*instance
	gone       map[string]time.Time // ids that said goodbye, so a late poll reply cannot revive them
	keys       map[string]*keyEntry
	// OnChange, when set, is called under the registry's lock with the
	// new state of each route key whose state changed.
	OnChange func(KeyState)
}

// NewRegistry returns an empty registry that forgets an instance not seen
// for staleAfter (one that stopped without saying so).
func NewRegistry(staleAfter time.Duration) *Registry {
	return &Registry{
		staleAfter: staleAfter,
		instances:  map[string]*instance{},
		gone:       map[string]time.Time{},
		keys:       map[string]*keyEntry{},
	}
}

// Seen records that service instance s is alive now, with its routes.
func (r *Registry) Seen(s Service, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, bye := r.gone[s.ID]; bye || s.ID == "" {
		return
	}
	keys := make([]string, 0, len(s.Routes))
	for _, rt := range s.Routes {
		keys = append(keys, rt.Key())
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	if in, ok := r.instances[s.ID]; ok && in.name == s.Name && in.legacy == s.Legacy() && in.streams == s.Streams() && slices.Equal(in.keys, keys) {
		in.seen = now
		return
	}
	r.removeLocked(s.ID)
	in := &instance{name: s.Name, legacy: s.Legacy(), streams: s.Streams(), keys: keys, seen: now}
	r.instances[s.ID] = in
	for _, rt := range s.Routes {
		if _, ok := r.keys[rt.Key()]; !ok {
			r.keys[rt.Key()] = &keyEntry{route: rt, services: map[string]int{}, legacy: map[string]int{}, flat: map[string]int{}}
		}
	}
	for _, k := range keys {
		e := r.keys[k]
		e.services[in.name]++
		if in.legacy {
			e.legacy[in.name]++
		}
		if !in.streams {
			e.flat[in.name]++
		}
		r.changedLocked(k, e)
	}
}

// Gone records that instance id stopped.
func (r *Registry) Gone(id string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gone[id] = now
	r.removeLocked(id)
}

// Expire forgets instances not seen for the registry's staleAfter, and
// goodbyes older than that.
func (r *Registry) Expire(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, in := range r.instances {
		if now.Sub(in.seen) > r.staleAfter {
			r.removeLocked(id)
		}
	}
	for id, at := range r.gone {
		if now.Sub(at) > r.staleAfter {
			delete(r.gone, id)
		}
	}
}

func (r *Registry) removeLocked(id string) {
	in, ok := r.instances[id]
	if !ok {
		return
	}
	delete(r.instances, id)
	for _, k := range in.keys {
		e := r.keys[k]
		dec(e.services, in.name)
		if in.legacy {
			dec(e.legacy, in.name)
		}
		if !in.streams {
			dec(e.flat, in.name)
		}
		r.changedLocked(k, e)
		if len(e.services) == 0 {
			delete(r.keys, k)
		}
	}
}

func dec(m map[string]int, k string) {
	if m[k]--; m[k] <= 0 {
		delete(m, k)
	}
}

func (r *Registry) changedLocked(k string, e *keyEntry) {
	if r.OnChange != nil {
		r.OnChange(e.state())
	}
}

func (e *keyEntry) state() KeyState {
	st := KeyState{Route: e.route}
	for name, n := range e.services {
		st.Instances += n
		st.Services = append(st.Services, name)
	}
	for name := range e.legacy {
		st.Legacy = append(st.Legacy, name)
	}
	slices.Sort(st.Services)
	slices.Sort(st.Legacy)
	st.Owner = OwnerOf(st.Services, st.Legacy)
	st.Streams = st.Owner != "" && e.flat[st.Owner] == 0
	return st
}

// State returns the state of the route with key k.
func (r *Registry) State(k string) (KeyState, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.keys[k]
	if !ok {
		return KeyState{}, false
	}
	return e.state(), true
}

// States returns the state of every route with a live instance.
func (r *Registry) States() []KeyState {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]KeyState, 0, len(r.keys))
	for _, e := range r.keys {
		out = append(out, e.state())
	}
	slices.SortFunc(out, func(a, b KeyState) int { return strings.Compare(a.Route.Key(), b.Route.Key()) })
	return out
}

// Match returns the state of the route that a request on subj reaches,
// chosen as the gateway chooses (the most specific live route, as one
// ServeMux would), for callers that keep no route table of their own.
func (r *Registry) Match(subj string) (KeyState, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best *keyEntry
	for _, e := range r.keys {
		if !RouteMatches(e.route, subj) {
			continue
		}
		if best == nil || MoreSpecific(e.route, best.route) {
			best = e
		}
	}
	if best == nil {
		return KeyState{}, false
	}
	return best.state(), true
}

// RouteMatches reports whether a request on subj reaches route rt: its
// subscription matches, and for a tail (whose ">" also covers the method
// token) the method is the route's (HEAD goes with GET, as in ServeMux).
func RouteMatches(rt Route, subj string) bool {
	if !subject.Matches(rt.Subject, subj) {
		return false
	}
	if rt.Method == "" || !strings.HasSuffix(rt.Subject, ">") {
		return true
	}
	m := subj[strings.LastIndexByte(subj, '.')+1:]
	return m == rt.Method || m == "HEAD" && rt.Method == "GET"
}

// MoreSpecific orders routes as ServeMux precedence does for the shapes a
// subject can hold: token by token a literal before "*" before ">", and on
// the same subscription a route with a method before one without.
func MoreSpecific(a, b Route) bool {
	if a.Subject == b.Subject {
		return a.Method > b.Method
	}
	return TokensMoreSpecific(strings.Split(a.Subject, "."), strings.Split(b.Subject, "."))
}

// TokensMoreSpecific orders two subscriptions given as tokens: a literal
// before "*", "*" before ">", so the most specific comes first.
func TokensMoreSpecific(a, b []string) bool {
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
