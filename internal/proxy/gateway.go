// Package proxy is the gateway: an http.Handler that maps each request to
// a subject (internal/subject), sends it as a NATS request to the worker
// queue group that owns the route, and answers with the reply
// (internal/wire), plus the route table it learns from running services
// and the server around it (listeners, admin endpoints, graceful stop).
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/policy"
	"github.com/metropolis-dev/metro/internal/subject"
	"github.com/metropolis-dev/metro/internal/tracing"
	"github.com/metropolis-dev/metro/internal/wire"
)

// Config is what the gateway needs; zero values take the defaults below.
type Config struct {
	Prefix  string
	Timeout time.Duration
	MaxBody int64
	// MaxInFlight bounds the requests served at once, MaxBodyMemory the
	// bytes of request bodies held at once; beyond either a request is
	// answered 503 with Retry-After. 0 takes the default, negative: none.
	MaxInFlight   int
	MaxBodyMemory int64
	// TrustedProxies nil means DefaultTrustedProxies; empty trusts none.
	TrustedProxies []netip.Prefix
	// Routes are declared routes (reachable plain subscribers) and
	// per-route timeout overrides.
	Routes []RouteConfig
	// RouteTTL is how long a route outlives its last announcing service.
	RouteTTL time.Duration
	// DiscoveryInterval is how often services are asked for their routes,
	// a safety net behind the announcements of metro workers; an instance
	// unseen for three intervals (and at least 3s) is taken for gone.
	DiscoveryInterval time.Duration
	Logger            *slog.Logger
	// AccessLog, when set, gets one entry per request.
	AccessLog  *slog.Logger
	Registerer prometheus.Registerer

	// redial, when set, connects anew to the cluster, for a handoff away
	// from a server entering lame duck mode (see Server).
	redial func() (*nats.Conn, error)
	// Policies are the edge policies (auth, CORS, rate limits); nil for
	// none. See PoliciesFrom.
	Policies *policy.Set
	// TracerProvider, when set, gets a span per request and one per NATS
	// request (internal/tracing); nil makes none.
	TracerProvider trace.TracerProvider
}

// RouteConfig declares a route or overrides an announced one's timeout.
type RouteConfig struct {
	Match   string // ServeMux pattern: "POST /orders"
	Timeout time.Duration
}

// Defaults of Config.
const (
	DefaultTimeout           = 30 * time.Second
	DefaultMaxBody           = 1 << 20
	DefaultRouteTTL          = 10 * time.Minute
	DefaultDiscoveryInterval = 5 * time.Second
)

// minStale is the least time an instance may go unseen before it is
// taken for gone.
const minStale = 3 * time.Second

// Gateway serves HTTP by NATS request/reply.
type Gateway struct {
	nc             *nats.Conn
	prefix         string
	timeout        time.Duration
	maxBody        int64
	trustedProxies []netip.Prefix
	interval       time.Duration
	table          *table
	primary        *lane                // on nc
	lane           atomic.Pointer[lane] // where requests go: primary, or a standby during a handoff
	redial         func() (*nats.Conn, error)
	handoff        handoffState
	registry       *discovery.Registry
	metrics        *metrics
	limits         *limits
	unmatched      *routeMetrics
	log            *slog.Logger
	access         slog.Handler // the access log's, nil for none
	tracer         *tracing.Tracer
	ready          atomic.Bool
	policies       policies
	// eventStreams ends with EndEventStreams (stream.go).
	eventStreams    context.Context
	endEventStreams context.CancelFunc
}

// New returns a gateway on nc. Call Run to learn routes.
func New(nc *nats.Conn, cfg Config) (*Gateway, error) {
	g := &Gateway{
		nc:             nc,
		prefix:         cfg.Prefix,
		timeout:        cmp(cfg.Timeout, DefaultTimeout),
		maxBody:        cmp(cfg.MaxBody, DefaultMaxBody),
		trustedProxies: cfg.TrustedProxies,
		interval:       cmp(cfg.DiscoveryInterval, DefaultDiscoveryInterval),
		table:          newTable(cmp(cfg.RouteTTL, DefaultRouteTTL)),
		redial:         cfg.redial,
		log:            cfg.Logger,
		tracer:         tracing.New(cfg.TracerProvider),
	}
	if cfg.AccessLog != nil {
		g.access = cfg.AccessLog.Handler()
	}
	g.eventStreams, g.endEventStreams = context.WithCancel(context.Background())
	g.primary = newLane(nc)
	g.lane.Store(g.primary)
	// Three rounds of discovery, and never less than a few seconds, so
	// slow answers on a busy machine do not turn away requests that a
	// worker would have served. A worker that stops says so at once; this
	// is for one that ended without a word.
	g.registry = discovery.NewRegistry(max(3*g.interval, minStale))
	g.registry.OnChange = g.table.update
	if g.trustedProxies == nil {
		g.trustedProxies = DefaultTrustedProxies
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	g.metrics = newMetrics(reg, nc, func() int { return len(g.table.load()) })
	g.limits = newLimits(cfg, reg)
	g.unmatched = g.metrics.forRoute(unmatchedRoute)
	ps, err := newPolicyState(cfg.Policies, g.prefix)
	if err != nil {
		return nil, err
	}
	g.policies.init(ps, reg)
	g.table.newRoute = func(r *route) {
		r.metrics = g.metrics.forRoute(r.pattern)
		g.log.Info("route added", "route", r.pattern, "subject", r.subject)
	}
	g.table.contested = g.logContested
	for _, rc := range cfg.Routes {
		r, err := routeOf(rc.Match, g.prefix)
		if err != nil {
			return nil, fmt.Errorf("gateway route %q: %w", rc.Match, err)
		}
		g.table.declare(r, rc.Timeout)
	}
	return g, nil
}

func cmp[T int64 | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Run learns the route table from running services until ctx ends. The
// gateway is ready once the first round of answers had time to arrive.
func (g *Gateway) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g.handoff.start(ctx)
	defer g.handoff.stop()
	policiesDone := make(chan struct{})
	defer func() { cancel(); <-policiesDone }()
	go func() { g.runPolicies(ctx); close(policiesDone) }()
	errc := make(chan error, 1)
	go func() { errc <- discovery.Follow(ctx, g.nc, g.prefix, g.interval, g.registry) }()
	// Ready once the replies to the first poll had time to arrive; the
	// poll itself repeats more slowly.
	t := time.NewTicker(min(g.interval, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return <-errc
		case err := <-errc:
			return err
		case now := <-t.C:
			g.ready.Store(true)
			g.table.expire(now)
		}
	}
}

// Ready reports whether the gateway has a route table and a connection.
func (g *Gateway) Ready() bool { return g.ready.Load() && g.nc.IsConnected() }

// Routes returns the patterns in the route table, most specific first.
func (g *Gateway) Routes() []string {
	rs := g.table.load()
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.pattern
	}
	return out
}

// exchange is what one request did, for metrics and the access log.
type exchange struct {
	status  int
	subject string
	route   *route
	bytes   int
	err     string
	send    tracing.Span // the NATS request's span
	sent    time.Time    // when its reply (or the giving up) came
	parts   int          // of a streamed reply, the first message's included
	// abort: a streamed reply broke after its status was sent, so the
	// response must end visibly incomplete (http.ErrAbortHandler).
	abort bool
}

// statusClientGone is logged when the client left before the answer, as
// nginx does; nothing is written to the client.
const statusClientGone = 499

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	g.metrics.inflight.Inc()
	rid := wire.RequestID(r.Header.Get(wire.ClientRequestID))
	w.Header()[wire.ClientRequestID] = []string{rid}
	r, span := g.tracer.StartServer(r, rid)
	var x exchange
	g.serve(w, r, start, rid, &x)
	g.endSpans(span, &x)
	g.metrics.inflight.Dec()
	elapsed := time.Since(start)
	rm := g.unmatched
	if x.route != nil {
		rm = x.route.metrics
	}
	rm.observe(x.status, elapsed.Seconds())
	if g.access != nil {
		g.logAccess(r, rid, &x, elapsed)
	}
	if x.abort {
		// net/http then closes the connection without the last chunk.
		panic(http.ErrAbortHandler)
	}
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, start time.Time, rid string, x *exchange) {
	fail := func(status int, detail string) {
		x.status, x.err = status, detail
		retry := 0
		if status == http.StatusServiceUnavailable {
			retry = wire.RetryAfterSeconds
		}
		wire.WriteProblem(w, status, detail, rid, retry)
	}
	path := r.URL.EscapedPath()
	var buf [256]byte
	sb, err := subject.Append(buf[:0], g.prefix, r.Method, path)
	if err != nil {
		fail(wire.PathStatus(err), err.Error())
		return
	}
	x.subject = string(sb)
	rs := g.table.load()
	rt, allow := rs.match(x.subject)
	var claims string
	if p := g.policies.cur.Load(); p != nil && !g.admit(p, w, r, rid, rs, rt, x, &claims) {
		return
	}
	if rt == nil {
		if len(allow) > 0 {
			methods := allowHeader(allow)
			w.Header()["Allow"] = []string{methods}
			fail(http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed here; allowed: %s", r.Method, methods))
			return
		}
		fail(http.StatusNotFound, "no route matches "+r.Method+" "+path)
		return
	}
	x.route = rt
	if !rt.available() {
		if rt = rs.matchAvailable(x.subject); rt == nil {
			fail(http.StatusServiceUnavailable, "no worker is available for this route")
			return
		}
		x.route = rt
	}
	ln := g.acquire()
	defer ln.release()
	if !ln.nc.IsConnected() {
		// nats.go would buffer the request until it reconnects; a client
		// is better served by an answer now.
		fail(http.StatusServiceUnavailable, "the gateway is not connected to NATS")
		return
	}
	if !g.limits.enter() {
		if r.ContentLength != 0 {
			// Reading a body only to drop it would hold the connection.
			w.Header().Set("Connection", "close")
		}
		fail(http.StatusServiceUnavailable, fmt.Sprintf("the gateway is at its limit of %d requests in flight (gateway.max_in_flight)", g.limits.maxInFlight))
		return
	}
	defer g.limits.leave()
	var held int64
	defer func() { g.limits.bodies.give(held) }()
	// The route's timeout bounds the whole exchange, body included, and
	// the connection's deadlines follow it (see routeDeadlines).
	deadline := start.Add(g.timeout)
	if rt.timeout > 0 && rt.timeout != g.timeout {
		deadline = start.Add(rt.timeout)
		routeDeadlines(w, deadline)
	}
	body, rest, status, err := g.readBody(w, r, &held, rt.streams.Load())
	if err != nil {
		fail(status, err.Error())
		return
	}
	if time.Now().After(deadline) {
		fail(http.StatusRequestTimeout, "the request body took longer than the route's timeout")
		return
	}
	xff, host, proto, untrusted := g.forwarded(r)
	req := wire.Request{
		Method:      r.Method,
		EscapedPath: path,
		RawQuery:    r.URL.RawQuery,
		Header:      r.Header,
		RequestID:   rid,
		Deadline:    deadline,
		Body:        body,
		Forwarded:   &wire.Forwarded{For: xff, Host: host, Proto: proto, Untrusted: untrusted},
		Route:       rt.key,
		Claims:      claims,
	}
	if o := rt.owner.Load(); o != nil {
		req.Service = *o
	}
	h := w.Header()
	_, x.send = g.tracer.StartSend(r.Context(), x.subject, rt.pattern, r.Header)
	ctx := r.Context()
	if rest != nil {
		// The body goes on in parts that the worker pulls; one that fails
		// ends the wait for the reply with its own answer (a 413, a 408).
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		// A worker may answer while it still reads (an echo, a
		// transform): net/http then must not close the body when the
		// reply's first bytes go out.
		_ = http.NewResponseController(w).EnableFullDuplex()
		up, err := startUpload(ctx, deadline, ln.nc, rest, g.maxBody, cancel)
		if err != nil {
			fail(http.StatusServiceUnavailable, "streaming the request body: "+err.Error())
			return
		}
		defer up.stop(w)
		req.Stream, req.Length = up.src.Subject(), r.ContentLength
	}
	msg := req.Msg(x.subject)
	m, err := ln.inbox.request(ctx, msg, deadline)
	if errors.Is(err, nats.ErrNoResponders) {
		m, err = g.retryNoResponders(ctx, ln, msg, deadline, err)
	}
	x.sent = time.Now()
	if be := (*bodyError)(nil); errors.As(context.Cause(ctx), &be) {
		// Whatever the worker said, it said it of a body that failed.
		fail(be.status, be.Error())
		return
	}
	if err != nil && ctx.Err() != nil {
		x.status, x.err = statusClientGone, "client went away"
		return
	}
	rep, err := wire.Result(m, err, rid, h)
	if err != nil {
		var f *wire.Failure
		errors.As(err, &f)
		fail(f.Status, f.Detail)
		return
	}
	if rep.Stream != "" {
		h[wire.ClientRequestID] = []string{rid}
		sctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		if isEventStream(h) {
			var release func()
			sctx, release = g.untilEventStreamsEnd(sctx)
			defer release()
		}
		x.abort = !g.relay(sctx, w, r.Method == http.MethodHead, ln.nc, rep, x)
		return
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // the worker chose none: do not sniff one
	}
	if r.Method != http.MethodHead || len(rep.Body) > 0 || len(h["Content-Length"]) != 1 {
		// A HEAD answer keeps the length the worker gave for the GET body.
		h["Content-Length"] = []string{strconv.Itoa(len(rep.Body))}
	}
	h[wire.ClientRequestID] = []string{rid}
	w.WriteHeader(rep.Status)
	n, err := w.Write(rep.Body)
	if f, ok := w.(interface{ FlushError() error }); ok && err == nil {
		// Sent now rather than after ServeHTTP returns, so that a reply
		// the connection could not take (a write deadline, a client gone)
		// is logged and counted as such, not as the status it carried.
		err = f.FlushError()
	}
	x.status, x.bytes = rep.Status, n
	if err != nil {
		x.status, x.err = statusClientGone, fmt.Sprintf("the %d reply could not be sent: %v", rep.Status, err)
	}
}

// Margins past a request's deadline for its connection: the read deadline
// lets net/http notice a client that left while a reply is awaited, and
// the write deadline leaves time to send the reply. The server applies
// them to the default timeout (NewServer), routeDeadlines to a route's own.
const (
	readMargin  = 10 * time.Second
	writeMargin = 15 * time.Second
)

// routeDeadlines moves the connection's deadlines to a route's own
// timeout. Left at the server's, which come from the default timeout, a
// longer route's reply would meet a write deadline already past, and the
// client would get an empty answer.
func routeDeadlines(w http.ResponseWriter, deadline time.Time) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(deadline.Add(readMargin)) // not supported: not a connection of ours
	_ = rc.SetWriteDeadline(deadline.Add(writeMargin))
}

// noResponderRetry bounds how long a request that found no responder
// for a route known to be live is sent again.
const noResponderRetry = time.Second

// retryNoResponders sends msg again, with backoff, while NATS answers that
// no one subscribes to it. That answer means no worker got the request, so
// sending it again is safe, and for a route whose workers announced
// themselves within the last second it is most likely a moment in which
// interest is moving between servers (a worker moving off a server in lame
// duck mode subscribes on another before leaving, but the servers learn of
// the two changes over different routes).
func (g *Gateway) retryNoResponders(ctx context.Context, ln *lane, msg *nats.Msg, deadline time.Time, err error) (*nats.Msg, error) {
	until := time.Now().Add(noResponderRetry)
	wait := 5 * time.Millisecond
	for errors.Is(err, nats.ErrNoResponders) && time.Now().Add(wait).Before(until) && time.Now().Add(wait).Before(deadline) {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait *= 2
		var m *nats.Msg
		if m, err = ln.inbox.request(ctx, msg, deadline); err == nil {
			return m, nil
		}
	}
	return nil, err
}

var errBodyTooLarge = errors.New("request body too large")

// allowHeader lists methods sorted and once each; GET brings HEAD along.
func allowHeader(methods []string) string {
	out := slices.Clone(methods)
	if slices.Contains(out, http.MethodGet) {
		out = append(out, http.MethodHead)
	}
	slices.Sort(out)
	return strings.Join(slices.Compact(out), ", ")
}

func (g *Gateway) logAccess(r *http.Request, rid string, x *exchange, d time.Duration) {
	route := ""
	if x.route != nil {
		route = x.route.pattern
	}
	attrs := []slog.Attr{
		slog.String("request_id", rid),
		slog.String("method", r.Method),
		slog.String("path", r.URL.EscapedPath()),
		slog.String("route", route),
		slog.String("subject", x.subject),
		slog.Int("status", x.status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.Int("bytes", x.bytes),
		slog.String("remote", r.RemoteAddr),
	}
	if x.parts > 0 {
		attrs = append(attrs, slog.Int("parts", x.parts))
	}
	if x.err != "" {
		attrs = append(attrs, slog.String("error", x.err))
	}
	// Straight to the handler: Logger.LogAttrs would also look up the
	// caller's program counter, which no access line shows and which cost
	// 2% of the gateway's CPU.
	ctx := r.Context()
	if !g.access.Enabled(ctx, slog.LevelInfo) {
		return
	}
	rec := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	rec.AddAttrs(attrs...)
	_ = g.access.Handle(ctx, rec)
}

// logContested warns that more than one service announces a route: each
// of their queue groups gets every request, and only the owner's runs it
// (PROTOCOL.md section 5).
func (g *Gateway) logContested(r *route, st discovery.KeyState) {
	if !st.Enforced() {
		g.log.Error("route announced by more than one service that speaks protocol version 1: each runs every request until all but one are gone or upgraded",
			"route", r.pattern, "services", st.Services, "version_1", st.Legacy)
		return
	}
	g.log.Warn("route announced by more than one service: only the owner runs its requests",
		"route", r.pattern, "services", st.Services, "owner", st.Owner)
}
