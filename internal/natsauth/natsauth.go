// Package natsauth decides who may do what on metro's NATS bus. It knows
// the identities metro runs under (the gateway, each worker, the read-only
// tap and the other tools), derives each one's subject permissions from
// the project's routes (through internal/subject), and renders them as
// nats-server configuration, the same for metro dev and for a cluster.
//
// Every identity is an nkey user with its own permissions in one account:
// the roles share one application and one trust boundary, so accounts
// (which isolate) and operator JWTs (which delegate who may issue users)
// would add keys to manage without narrowing anything further.
package natsauth

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/subject"
)

// Role is what an identity is for.
type Role string

// The roles metro runs under.
const (
	RoleGateway Role = "gateway"
	RoleWorker  Role = "worker"
	RoleTap     Role = "tap"   // metro tap: watches, never answers
	RoleTools   Role = "tools" // metro call and metro routes
)

// Subjects of the NATS service protocol (nats.go micro) that metro uses.
const (
	srvPing  = "$SRV.PING"
	srvInfo  = discovery.InfoSubject
	srvStats = "$SRV.STATS"
)

// announcements are where workers say they start and stop serving
// (PROTOCOL.md section 5), which gateways, tap, metro call and a calling
// worker's Transport follow.
var announcements = []string{discovery.UpSubject, discovery.DownSubject}

// streamRoot is where the stream subjects of PROTOCOL.md section 9 live:
// each identity that holds streams subscribes its own branch
// (streamBranch); every one of them may pull from any, since a stream's
// subject ends in a random id that only its reader is told.
const streamRoot = "$METRO.STREAM"

// streamBranch is the stream subjects an identity holds, named by the
// token of its inbox prefix after _INBOX (internal/stream does the same).
func streamBranch(inboxPrefix string) string {
	return streamRoot + "." + inboxPrefix[len(inboxRoot)+1:] + ".>"
}

// streams lets u hold streams and pull from others': it subscribes its own
// branch, publishes pulls anywhere in the stream space, and answers each
// pull once, which its parts are.
func (u *User) streams(ttl time.Duration) {
	u.Publish = union(u.Publish, []string{streamRoot + ".>"})
	u.Subscribe = union(u.Subscribe, []string{streamBranch(u.InboxPrefix)})
	u.Responses, u.ReplyTTL = true, ttl
}

// inboxRoot is where every reply subject lives; each identity gets its own
// branch of it (InboxPrefix), and only tap may read the whole tree.
const inboxRoot = "_INBOX"

// anyQueue, as the queue of a subscribe permission, matches every queue
// group (nats-server matches queue names as subjects).
const anyQueue = ">"

// DefaultReplyTTL is how long a worker may take to answer a request it
// received, as nats-server's own default for allow_responses.
const DefaultReplyTTL = 2 * time.Minute

// Project is what permissions are derived from: metro.yaml's view of
// the bus.
type Project struct {
	Prefix  string
	Workers []Worker
	// GatewayRoutes are the patterns of gateway.routes: routes the gateway
	// may publish to besides the workers'.
	GatewayRoutes []string
	// ReplyTTL bounds how long after a request its answer may be sent
	// (0: DefaultReplyTTL).
	ReplyTTL time.Duration
}

// Worker is one worker of a project.
type Worker struct {
	Name string
	// Routes are the patterns it serves; none declared means any route
	// under the prefix, in its own queue group only.
	Routes []string
	// Calls names the workers it may call; nil is every route, empty none.
	Calls []string
}

// User is one identity and its permissions, in nats-server's terms.
type User struct {
	ID   string // "gateway", "tap", "tools" or "worker-NAME": unique, a file name
	Role Role
	Name string // the worker's name for RoleWorker

	// Publish and Subscribe are allow lists; a Subscribe entry may be
	// "subject queue", allowing the subject only in that queue group.
	// The deny lists carve the reserved subjects out of a broad allow.
	Publish, PublishDeny     []string
	Subscribe, SubscribeDeny []string
	// Responses lets it publish one reply to each request it received
	// within ReplyTTL (allow_responses), and nothing else on inboxes.
	Responses bool
	ReplyTTL  time.Duration
	// InboxPrefix is the reply subject prefix its client must use
	// (nats.go CustomInboxPrefix).
	InboxPrefix string
}

// InboxPrefix is the reply subject prefix of an identity: a worker's name,
// or for the other roles a token no worker name (a DNS label) can be.
func InboxPrefix(role Role, worker string) string {
	if role == RoleWorker {
		return inboxRoot + "." + worker
	}
	return inboxRoot + "._" + string(role)
}

// WorkerID is the identity of a worker named name.
func WorkerID(name string) string { return "worker-" + name }

// Users derives every identity of p: the gateway, tap, tools, then the
// workers sorted by name.
func Users(p Project) ([]User, error) {
	ttl := p.ReplyTTL
	if ttl <= 0 {
		ttl = DefaultReplyTTL
	}
	workers := slices.Clone(p.Workers)
	sort.Slice(workers, func(i, j int) bool { return workers[i].Name < workers[j].Name })
	serves := map[string][]string{} // worker -> its route subjects
	for _, w := range workers {
		subs, err := workerSubjects(p.Prefix, w)
		if err != nil {
			return nil, err
		}
		serves[w.Name] = subs
	}
	// all is every route subject: what the gateway and the tools may
	// publish to, and a worker without calls: declared.
	all, err := patternSubjects(p.Prefix, p.GatewayRoutes)
	if err != nil {
		return nil, fmt.Errorf("gateway.routes: %w", err)
	}
	for _, w := range workers {
		all = union(all, serves[w.Name])
	}
	users := []User{gatewayUser(all), tapUser(p.Prefix), toolsUser(all)}
	for _, w := range workers {
		u, err := workerUser(w, serves, all, ttl)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	for i := range users {
		if users[i].Role != RoleTap {
			users[i].streams(ttl)
		}
		users[i].carveReserved()
	}
	return users, nil
}

// gatewayUser publishes requests to routes and asks services who runs, of
// all or of one by name (metro dev, which shares its connection, waits on
// replicas so); it reads its own replies and the workers' announcements.
func gatewayUser(all []string) User {
	u := User{ID: string(RoleGateway), Role: RoleGateway, InboxPrefix: InboxPrefix(RoleGateway, "")}
	u.Publish = union(all, ask(srvPing, srvInfo))
	u.Subscribe = union([]string{u.InboxPrefix + ".>"}, announcements)
	return u
}

// tapUser watches every route and every reply and asks services for their
// routes, with plain subscriptions only: it can never take a message away
// from a worker's queue group, nor answer one.
func tapUser(prefix string) User {
	u := User{ID: string(RoleTap), Role: RoleTap, InboxPrefix: InboxPrefix(RoleTap, "")}
	u.Publish = []string{srvInfo}
	u.Subscribe = union(union(routeSpace(prefix), []string{inboxRoot + ".>", streamRoot + ".>"}), announcements)
	u.SubscribeDeny = []string{"$SYS.>", "> " + anyQueue}
	return u
}

// toolsUser is metro call (a request to any route, following discovery
// to name the route's owner) and metro routes (the service protocol's
// questions).
func toolsUser(all []string) User {
	u := User{ID: string(RoleTools), Role: RoleTools, InboxPrefix: InboxPrefix(RoleTools, "")}
	u.Publish = union(all, ask(srvPing, srvInfo, srvStats))
	u.Subscribe = union([]string{u.InboxPrefix + ".>"}, announcements)
	return u
}

// workerUser serves its routes in its own queue group, answers the service
// protocol for its name, announces itself, answers each request once, and
// calls the workers its calls name (every route when nil).
//
// Its announcements cannot be narrowed to its own name: their subjects
// are the same for every service and the service is named in the body,
// which permissions do not see. That claims nothing it could not already
// claim in its answer to $SRV.INFO; what it adds is that a worker could
// say goodbye for another service's instance, which the gateway then
// ignores until the goodbye is stale (discovery.Registry.Gone).
//
// A worker that may call others follows discovery for its Transport, as
// metro call does: it reads the announcements and asks every service for
// its info ($SRV.INFO alone: a request, whose answers come to its own
// inbox). Answering discovery stays as before, on the $SRV subjects of
// its own name and through one reply per request.
func workerUser(w Worker, serves map[string][]string, all []string, ttl time.Duration) (User, error) {
	n := w.Name
	u := User{ID: WorkerID(n), Role: RoleWorker, Name: n, Responses: true, ReplyTTL: ttl, InboxPrefix: InboxPrefix(RoleWorker, n)}
	for _, s := range serves[n] {
		u.Subscribe = append(u.Subscribe, s+" "+n)
	}
	u.Subscribe = append(u.Subscribe,
		srvPing, srvInfo, srvStats,
		srvPing+"."+n, srvInfo+"."+n, srvStats+"."+n,
		"$SRV.*."+n+".*",
		u.InboxPrefix+".>")
	if w.Calls == nil {
		u.Publish = all
	} else {
		// Non-nil: an empty allow list denies every publish but replies,
		// where a missing one would allow all.
		u.Publish = []string{}
		for _, c := range w.Calls {
			callee, ok := serves[c]
			if !ok {
				return User{}, fmt.Errorf("worker %s calls %q, which is not a worker", n, c)
			}
			u.Publish = union(u.Publish, callee)
		}
	}
	u.Publish = union(u.Publish, announcements)
	if w.Calls == nil || len(w.Calls) > 0 {
		u.Publish = union(u.Publish, []string{srvInfo})
		u.Subscribe = union(u.Subscribe, announcements)
	}
	return u, nil
}

// carveReserved denies what a full wildcard in an allow list would let in
// beyond routes: the system account's subjects, other identities' inboxes,
// and (for workers) the service protocol, whose answers go out as replies,
// but for the $SRV.INFO request it may make (workerUser). NATS lets deny
// win over allow, and replies (allow_responses) are checked after both.
func (u *User) carveReserved() {
	if slices.Contains(u.Publish, ">") {
		u.PublishDeny = union(u.PublishDeny, []string{"$SYS.>", inboxRoot + ".>"})
		if u.Role == RoleWorker {
			// A deny cannot except a subject, so rather than $SRV.> it
			// names the other verbs and everything below a verb (one
			// service by name, or by name and id). A worker with ">" may
			// call, so it always has $SRV.INFO.
			u.PublishDeny = union(u.PublishDeny, []string{srvPing, srvStats, "$SRV.*.>"})
		}
	}
	if u.Role == RoleWorker && slices.Contains(u.Subscribe, "> "+u.Name) {
		// Its own plain inbox and $SRV subscriptions stay allowed; queue
		// subscriptions there would read others' replies or answer
		// discovery in another service's place.
		u.SubscribeDeny = union(u.SubscribeDeny, []string{"$SYS.>", inboxRoot + ".> " + anyQueue, "$SRV.> " + anyQueue})
	}
}

// ask is the service protocol requests of verbs: to every service, and to
// one by name or by name and id.
func ask(verbs ...string) []string {
	var out []string
	for _, v := range verbs {
		out = append(out, v, v+".>")
	}
	return out
}

// routeSpace is every subject a route can have under prefix.
func routeSpace(prefix string) []string {
	if prefix == "" {
		return []string{">"}
	}
	return []string{prefix + ".>"}
}

func workerSubjects(prefix string, w Worker) ([]string, error) {
	if len(w.Routes) == 0 {
		return routeSpace(prefix), nil
	}
	subs, err := patternSubjects(prefix, w.Routes)
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", w.Name, err)
	}
	return subs, nil
}

// patternSubjects are the subscriptions of route patterns, as a worker
// serving them subscribes.
func patternSubjects(prefix string, patterns []string) ([]string, error) {
	var out []string
	for _, p := range patterns {
		rt, err := subject.ParsePattern(p)
		if err != nil {
			return nil, err
		}
		subs, err := rt.Subscriptions(prefix)
		if err != nil {
			return nil, err
		}
		out = union(out, subs)
	}
	return out, nil
}

// union appends the subjects of b missing from a, keeping a's order.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
