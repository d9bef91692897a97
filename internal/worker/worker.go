// Package worker is the runtime behind the metro SDK: it subscribes a set
// of http.Handlers to their subjects in the worker's queue group, turns
// each NATS request into an *http.Request and the handler's writes into
// the reply, runs handlers in a bounded pool, answers the NATS service
// protocol ($SRV.PING, INFO, STATS) and drains on shutdown.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/natsconn"
	"github.com/metropolis-dev/metro/internal/reply"
	"github.com/metropolis-dev/metro/internal/subject"
	"github.com/metropolis-dev/metro/internal/tracing"
	"github.com/metropolis-dev/metro/internal/wire"
)

// Defaults of Options.
const (
	DefaultConcurrency  = 256
	DefaultDrainTimeout = 30 * time.Second
	DefaultVersion      = "0.0.0"
	// DefaultMaxPending is the default MaxPending per unit of
	// Concurrency: a backlog of four rounds of handlers absorbs a burst,
	// and what waits in it waits for at most four handler times.
	DefaultMaxPending = 4
	// DefaultMaxPendingBytes keeps waiting requests to a quarter of the
	// 256Mi memory limit that metro deploy gives a worker.
	DefaultMaxPendingBytes = 64 << 20
)

// Each subscription's buffer in nats.go holds what arrived and receive
// has not yet taken. It only fills when the delivery goroutine falls
// behind the network, since receive never waits; it must stay above the
// backlog's bounds, and hold the largest message NATS allows, as a
// message it drops is lost without an answer and its client waits for a
// timeout.
const (
	subPendingMsgs  = 1 << 16
	subPendingBytes = 64 << 20 // nats-server's largest max_payload
)

// poolIdle is how long a handler goroutine waits for another message
// before it ends.
const poolIdle = 10 * time.Second

// Options configure a worker; zero values take the defaults above.
type Options struct {
	Name        string
	Version     string
	Description string
	Prefix      string
	// Conn is used when set (and then not closed by the worker); otherwise
	// the worker connects to URL with NATSOptions.
	Conn         *nats.Conn
	URL          string
	NATSOptions  []nats.Option
	Concurrency  int
	DrainTimeout time.Duration
	Logger       *slog.Logger
	// HealthAddr, when set, serves /healthz and /readyz there, and
	// /metrics unless Registerer is set.
	HealthAddr string
	// MaxPending bounds the requests waiting for a free handler (default
	// DefaultMaxPending × Concurrency), MaxPendingBytes their size; a
	// request beyond either is answered 503 with Retry-After at once.
	MaxPending      int
	MaxPendingBytes int
	// Registerer gets the worker's metrics; nil keeps them in a registry
	// of the worker's own, served on HealthAddr.
	Registerer prometheus.Registerer
	// TracerProvider, when set, gets a span per handled request; nil
	// builds one from the OTEL_* variables when they ask for export.
	TracerProvider trace.TracerProvider
}

// endpoint is one route: one subscription, one micro endpoint.
type endpoint struct {
	name    string
	pattern string // as registered with the mux
	route   subject.Route
	subject string
	stats   endpointStats
}

type endpointStats struct {
	requests  atomic.Int64
	errors    atomic.Int64
	nanos     atomic.Int64
	lastError atomic.Pointer[string]
}

// Worker serves http.Handlers over NATS.
type Worker struct {
	opts      Options
	mux       *http.ServeMux
	endpoints []*endpoint
	byPattern map[string]*endpoint
	byKey     map[string]*endpoint // discovery.Route.Key -> its endpoint
	id        string
	started   time.Time

	ready    chan struct{}
	lameDuck chan struct{} // the server announced lame duck mode
	draining atomic.Bool
	running  atomic.Bool
	inflight sync.WaitGroup
	backlog  *backlog
	pool     *pool
	metrics  *metrics
	nc       *nats.Conn
	conn     atomic.Pointer[nats.Conn] // nc, for readers outside Run
	views    discovery.Views           // for the worker's Transport, while Run runs
	calls    reply.Switch              // the lane its Transport's calls go over, while Run runs
	log      *slog.Logger
	tracer   *tracing.Tracer // nil: no spans
}

// New returns a worker with no routes.
func New(opts Options) *Worker {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.Version == "" {
		opts.Version = DefaultVersion
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending * opts.Concurrency
	}
	if opts.MaxPendingBytes <= 0 {
		opts.MaxPendingBytes = DefaultMaxPendingBytes
	}
	w := &Worker{
		opts:      opts,
		mux:       http.NewServeMux(),
		byPattern: map[string]*endpoint{},
		byKey:     map[string]*endpoint{},
		id:        nuid.Next(),
		ready:     make(chan struct{}),
		lameDuck:  make(chan struct{}, 1),
		log:       opts.Logger.With("worker", opts.Name),
		backlog:   newBacklog(opts.Concurrency, opts.MaxPending, opts.MaxPendingBytes),
	}
	w.metrics = newMetrics(opts.Name, opts.Registerer, w.backlog)
	return w
}

// Conn is the worker's connection while Run runs, nil otherwise.
func (w *Worker) Conn() *nats.Conn { return w.conn.Load() }

// Lane returns the lane for a call the worker's Transport makes, held
// until the caller releases it; nil unless Run runs. Calls move with the
// worker off a server in lame duck mode (handOff).
func (w *Worker) Lane() *reply.Lane { return w.calls.Acquire() }

// View is the worker's view of the services under prefix, for its
// Transport to name a route's owner as the gateway does; nil unless Run
// runs.
func (w *Worker) View(prefix string) *discovery.View {
	nc := w.conn.Load()
	if nc == nil {
		return nil
	}
	return w.views.Get(nc, prefix)
}

// Prefix is the subject prefix the worker serves under.
func (w *Worker) Prefix() string { return w.opts.Prefix }

// ID is the service instance id announced in $SRV replies.
func (w *Worker) ID() string { return w.id }

// Ready is closed once every route is subscribed and the service answers.
func (w *Worker) Ready() <-chan struct{} { return w.ready }

// Handle registers h for a ServeMux pattern that a subject can express.
func (w *Worker) Handle(pattern string, h http.Handler) error {
	rt, err := subject.ParsePattern(pattern)
	if err != nil {
		return err
	}
	if _, err := rt.Subscription(w.opts.Prefix); err != nil {
		return err
	}
	if _, dup := w.byPattern[pattern]; dup {
		return fmt.Errorf("worker %s: pattern %q registered twice", w.opts.Name, pattern)
	}
	if err := register(w.mux, pattern, routed{h}); err != nil {
		return err
	}
	add := func(method string) {
		r := rt
		r.Method = method
		s, _ := r.Subscription(w.opts.Prefix) // same shape as subj: cannot fail
		ep := &endpoint{name: endpointName(r.String(), len(w.endpoints)), pattern: pattern, route: r, subject: s}
		w.endpoints = append(w.endpoints, ep)
		w.byKey[discovery.RouteKey(r.Method, s)] = ep
		if method == rt.Method {
			w.byPattern[pattern] = ep
		}
	}
	add(rt.Method)
	if rt.Method == http.MethodGet && !rt.HasTail() {
		// ServeMux serves HEAD with GET handlers; HEAD requests travel on
		// their own subject, so GET routes listen there too.
		add(http.MethodHead)
	}
	return nil
}

// register adds the pattern to the mux, turning its panic on a conflict
// into an error.
func register(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("registering %q: %v", pattern, r)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// endpointName makes a micro endpoint name (A-Z a-z 0-9 - _) from a pattern.
func endpointName(pattern string, i int) string {
	var b strings.Builder
	for _, c := range pattern {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return fmt.Sprintf("%s-%d", strings.TrimSuffix(b.String(), "-"), i)
}

// Run serves until ctx ends, then drains: it stops taking messages, lets
// the ones already received finish and flushes their replies. A refused
// connection ends it early (see natsconn.Dial).
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("worker already running")
	}
	if len(w.endpoints) == 0 {
		return fmt.Errorf("worker %s has no routes", w.opts.Name)
	}
	stopTracing, err := w.startTracing(ctx)
	if err != nil {
		return err
	}
	defer stopTracing()
	nc := w.opts.Conn
	var lost <-chan error // stays nil with the caller's own connection
	if nc == nil {
		url := w.opts.URL
		if url == "" {
			url = nats.DefaultURL
		}
		opts := append(w.baseOptions(), nats.LameDuckModeHandler(func(*nats.Conn) {
			select {
			case w.lameDuck <- struct{}{}:
			default: // one is pending already
			}
		}))
		var err error
		if nc, lost, err = natsconn.Dial(url, w.log, opts...); err != nil {
			return err
		}
		defer nc.Close()
	}
	w.nc = nc
	w.conn.Store(nc)
	defer w.conn.Store(nil)
	primary := reply.NewLane(nc)
	w.calls.Set(primary)
	defer func() {
		w.calls.Set(nil)
		primary.Close()
	}()
	defer w.views.Close()
	var pool *pool
	pool, stopPool := startPool(func(m *nats.Msg) {
		// The slot passes from one waiting message to the next.
		for m != nil {
			began := time.Now()
			var took time.Duration
			if w.serve(m) {
				took = time.Since(began)
			}
			w.inflight.Done()
			var extra *nats.Msg
			if m, extra = w.backlog.next(took); extra != nil {
				pool.dispatch(extra)
			}
		}
	}, poolIdle)
	w.pool = pool
	// Idle handler goroutines end with Run; busy ones (past a drain
	// timeout) as soon as their handler returns.
	defer stopPool()
	w.started = time.Now().UTC()
	guardCtx, stopGuard := context.WithCancel(context.Background())
	guarded := make(chan struct{})
	go func() { guardCPU(guardCtx, w.backlog); close(guarded) }()
	defer func() { stopGuard(); <-guarded }()

	var health *healthServer
	if w.opts.HealthAddr != "" {
		var err error
		if health, err = startHealth(w.opts.HealthAddr, w); err != nil {
			return err
		}
		defer health.close()
	}

	subs, err := w.subscribe(nc)
	if err != nil {
		return err
	}
	svcSubs, err := w.serveServiceProtocol(nc)
	if err != nil {
		unsubscribe(subs)
		return err
	}
	// Not yet connected, the subscriptions go out when the connection is
	// made: there is nothing to wait for, and waiting would hold up a stop.
	if nc.IsConnected() {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := nc.FlushWithContext(fctx)
		cancel()
		if err != nil && ctx.Err() == nil && nc.IsConnected() {
			unsubscribe(append(subs, svcSubs...))
			return fmt.Errorf("subscribing worker %s: %w", w.opts.Name, err)
		}
		// A refused subscription is an -ERR that came before the flush's
		// PONG; serving without it would answer nothing and say nothing.
		if err := nc.LastError(); errors.Is(err, nats.ErrPermissionViolation) {
			unsubscribe(append(subs, svcSubs...))
			return fmt.Errorf("worker %s: the NATS server refused %s (not among the worker's permitted routes, workers.%s.routes in metro.yaml?): %w", w.opts.Name, w.refused(err), w.opts.Name, err)
		}
	}
	// Announced only now that every subscription is in place, so a
	// gateway that routes on the announcement reaches a listener.
	w.announce(nc, discovery.UpSubject)
	close(w.ready)
	if nc.IsConnected() {
		w.log.Info("worker serving", "routes", len(w.endpoints), "id", w.id)
	} else {
		w.log.Info("worker waiting for NATS", "routes", len(w.endpoints), "id", w.id)
	}

	for {
		select {
		case <-ctx.Done():
			return w.drain(nc, subs, svcSubs)
		case err := <-lost:
			return fmt.Errorf("worker %s: NATS connection closed for good: %w", w.opts.Name, err)
		case <-w.lameDuck:
			subs = w.handOff(ctx, primary, subs)
		}
	}
}

// subscribe subscribes every endpoint on nc in the worker's queue group.
func (w *Worker) subscribe(nc *nats.Conn) ([]*nats.Subscription, error) {
	var subs []*nats.Subscription
	for _, ep := range w.endpoints {
		sub, err := nc.QueueSubscribe(ep.subject, w.opts.Name, w.receive)
		if err != nil {
			unsubscribe(subs)
			return nil, fmt.Errorf("subscribing %s to %s: %w", ep.pattern, ep.subject, err)
		}
		_ = sub.SetPendingLimits(max(subPendingMsgs, w.opts.MaxPending), max(subPendingBytes, w.opts.MaxPendingBytes))
		subs = append(subs, sub)
	}
	return subs, nil
}

func (w *Worker) drain(nc *nats.Conn, subs, svcSubs []*nats.Subscription) error {
	w.draining.Store(true)
	w.log.Info("worker draining")
	// Leave discovery first, so nothing new is told about this instance,
	// then say goodbye: gateways stop routing to routes that no other
	// instance serves, and route their requests elsewhere or answer 503.
	unsubscribe(svcSubs)
	if nc.IsConnected() {
		w.announce(nc, discovery.DownSubject)
	}
	deadline := time.Now().Add(w.opts.DrainTimeout)
	// Cut off from the server, nothing more can arrive and no reply can
	// leave; draining would only wait for nats.go's flush timeouts.
	connected := nc.IsConnected()
	for _, s := range subs {
		if !connected {
			_ = s.Unsubscribe()
			continue
		}
		// Drain sends UNSUB, then delivers what the server had already
		// sent before it took effect: those messages are served, not lost.
		if err := s.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			w.log.Warn("draining subscription", "subject", s.Subject, "err", err)
		}
	}
	for _, s := range subs {
		for s.IsValid() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	done := make(chan struct{})
	go func() { w.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
		return fmt.Errorf("worker %s: handlers still running after %s", w.opts.Name, w.opts.DrainTimeout)
	}
	if !connected {
		w.log.Warn("worker stopped while disconnected from NATS")
		return nil
	}
	if err := nc.Flush(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("flushing replies: %w", err)
	}
	w.log.Info("worker stopped")
	return nil
}

// refused names the route whose subscription a refusal is about.
func (w *Worker) refused(err error) string {
	for _, ep := range w.endpoints {
		if strings.Contains(err.Error(), `"`+ep.subject+`"`) {
			return "the route " + ep.route.String() + " (" + ep.subject + ")"
		}
	}
	return "a subscription"
}

func unsubscribe(subs []*nats.Subscription) {
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
}

// receive runs on a subscription's delivery goroutine: it hands the
// message to the pool, or to the backlog when every handler is busy, and
// returns without waiting, so a slow handler holds up nothing but its own
// slot. A message whose client has stopped waiting is dropped; one that
// finds the backlog full is refused with 503 at once, which the client
// can retry elsewhere, instead of a 504 after its whole timeout.
func (w *Worker) receive(m *nats.Msg) {
	if w.expired(m) {
		return
	}
	w.inflight.Add(1)
	d, _ := wire.Deadline(m.Header)
	switch w.backlog.admit(m, d) {
	case admitRun:
		w.pool.dispatch(m)
	case admitShed:
		w.inflight.Done()
		w.shed(m, "every handler is busy and its backlog is full")
	case admitLate:
		w.inflight.Done()
		w.shed(m, "at the handlers' pace it could not start the request in time")
	}
}

// Patterns lists the registered patterns, sorted.
func (w *Worker) Patterns() []string {
	out := make([]string, 0, len(w.byPattern))
	for p := range w.byPattern {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func (w *Worker) endpointInfo(ep *endpoint) (name, subj string, meta map[string]string) {
	meta = map[string]string{discovery.MetaPath: pathOf(ep.route)}
	if ep.route.Method != "" {
		meta[discovery.MetaMethod] = ep.route.Method
	}
	return ep.name, ep.subject, meta
}

// pathOf is the path part of a route's pattern.
func pathOf(r subject.Route) string {
	r.Method = ""
	return r.String()
}

func stack() string { return string(debug.Stack()) }
