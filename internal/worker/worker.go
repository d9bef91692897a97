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
	"go.opentelemetry.io/otel/trace"

	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/natsconn"
	"github.com/metropolis-dev/metro/internal/subject"
	"github.com/metropolis-dev/metro/internal/tracing"
)

// Defaults of Options.
const (
	DefaultConcurrency  = 256
	DefaultDrainTimeout = 30 * time.Second
	DefaultVersion      = "0.0.0"
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
	// HealthAddr, when set, serves /healthz and /readyz there.
	HealthAddr string
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
	draining atomic.Bool
	running  atomic.Bool
	inflight sync.WaitGroup
	sem      chan struct{}
	pool     *pool
	nc       *nats.Conn
	conn     atomic.Pointer[nats.Conn] // nc, for readers outside Run
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
	return &Worker{
		opts:      opts,
		mux:       http.NewServeMux(),
		byPattern: map[string]*endpoint{},
		byKey:     map[string]*endpoint{},
		id:        nuid.Next(),
		ready:     make(chan struct{}),
		log:       opts.Logger.With("worker", opts.Name),
	}
}

// Conn is the worker's connection while Run runs, nil otherwise.
func (w *Worker) Conn() *nats.Conn { return w.conn.Load() }

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
		opts := append([]nats.Option{
			nats.Name("metro worker " + w.opts.Name),
			nats.MaxReconnects(-1),
			nats.ReconnectBufSize(8 << 20),
			natsconn.Coalesce(),
		}, w.opts.NATSOptions...)
		var err error
		if nc, lost, err = natsconn.Dial(url, w.log, opts...); err != nil {
			return err
		}
		defer nc.Close()
	}
	w.nc = nc
	w.conn.Store(nc)
	defer w.conn.Store(nil)
	w.sem = make(chan struct{}, w.opts.Concurrency)
	pool, stopPool := startPool(func(m *nats.Msg) {
		w.serve(m)
		<-w.sem
		w.inflight.Done()
	}, poolIdle)
	w.pool = pool
	// Idle handler goroutines end with Run; busy ones (past a drain
	// timeout) as soon as their handler returns.
	defer stopPool()
	w.started = time.Now().UTC()

	var health *healthServer
	if w.opts.HealthAddr != "" {
		var err error
		if health, err = startHealth(w.opts.HealthAddr, w); err != nil {
			return err
		}
		defer health.close()
	}

	var subs []*nats.Subscription
	for _, ep := range w.endpoints {
		sub, err := nc.QueueSubscribe(ep.subject, w.opts.Name, w.receive)
		if err != nil {
			unsubscribe(subs)
			return fmt.Errorf("subscribing %s to %s: %w", ep.pattern, ep.subject, err)
		}
		// Hold far more than the pool can take at once, so a burst waits
		// in the client instead of being dropped as a slow consumer.
		_ = sub.SetPendingLimits(1<<20, 256<<20)
		subs = append(subs, sub)
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
	}
	close(w.ready)
	if nc.IsConnected() {
		w.log.Info("worker serving", "routes", len(w.endpoints), "id", w.id)
	} else {
		w.log.Info("worker waiting for NATS", "routes", len(w.endpoints), "id", w.id)
	}

	select {
	case <-ctx.Done():
	case err := <-lost:
		return fmt.Errorf("worker %s: NATS connection closed for good: %w", w.opts.Name, err)
	}
	return w.drain(nc, subs, svcSubs)
}

func (w *Worker) drain(nc *nats.Conn, subs, svcSubs []*nats.Subscription) error {
	w.draining.Store(true)
	w.log.Info("worker draining")
	// Leave discovery first, so nothing new is told about this instance.
	unsubscribe(svcSubs)
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

func unsubscribe(subs []*nats.Subscription) {
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
}

// receive runs on a subscription's delivery goroutine: it hands the
// message to the pool and returns, so a slow handler holds up nothing but
// its own slot.
func (w *Worker) receive(m *nats.Msg) {
	w.sem <- struct{}{}
	w.inflight.Add(1)
	w.pool.dispatch(m)
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
