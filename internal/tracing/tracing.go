// Package tracing turns metro's request path into OpenTelemetry spans: it
// builds a tracer provider from the standard OTEL_* variables, starts and
// ends the spans of the gateway, the worker and worker-to-worker calls
// (HTTP and messaging semantic conventions, W3C trace context in the
// traceparent header), and, for metro dev, receives OTLP/HTTP exports into
// a bounded buffer of recent traces that `metro trace` reads.
//
// A nil *Tracer is tracing switched off: every method is then a nil check
// and nothing more, so the request path pays nothing when no OTEL_*
// variable asks for export.
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of metro's spans.
const ScopeName = "github.com/metropolis-dev/metro"

// AttrRequestID carries Metro-Request-Id on the gateway's and the worker's
// spans, so a trace is found by the X-Request-Id a client saw.
const AttrRequestID = attribute.Key("metro.request_id")

// propagator is W3C trace context, the format PROTOCOL.md passes through
// as traceparent and tracestate.
var propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Tracer starts metro's spans on one provider; nil means off.
type Tracer struct {
	t trace.Tracer
}

// New returns a Tracer on tp, or nil (tracing off) when tp is nil.
func New(tp trace.TracerProvider) *Tracer {
	if tp == nil {
		return nil
	}
	return &Tracer{t: tp.Tracer(ScopeName)}
}

// Span is one started span; the zero value (tracing off) ignores End.
type Span struct {
	s trace.Span
}

// Recording reports whether the span is recorded (tracing on, sampled).
func (s Span) Recording() bool { return s.s != nil && s.s.IsRecording() }

// StartServer starts the gateway's HTTP server span for r, continuing the
// client's traceparent when it sent one. The returned request carries the
// span in its context.
func (t *Tracer) StartServer(r *http.Request, requestID string) (*http.Request, Span) {
	if t == nil {
		return r, Span{}
	}
	ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, s := t.t.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(r.Method),
			semconv.URLPath(r.URL.EscapedPath()),
			AttrRequestID.String(requestID),
		))
	return r.WithContext(ctx), Span{s}
}

// SetRoute names the route a server span matched: the span is renamed
// "METHOD /pattern", as the HTTP conventions ask once the route is known.
func (s Span) SetRoute(pattern string) {
	if s.s == nil || pattern == "" {
		return
	}
	s.s.SetName(pattern)
	s.s.SetAttributes(semconv.HTTPRoute(routePath(pattern)))
}

// routePath is the path part of a ServeMux pattern ("GET /x/{id}" ->
// "/x/{id}"), which is what http.route holds.
func routePath(pattern string) string {
	for i := 0; i < len(pattern); i++ {
		if pattern[i] == ' ' {
			return pattern[i+1:]
		}
	}
	return pattern
}

// StartSend starts a client span for a NATS request on subject from ctx's
// span, and writes its trace context into h (traceparent, tracestate) so
// that the receiving worker continues the trace under it.
func (t *Tracer) StartSend(ctx context.Context, subject, route string, h http.Header) (context.Context, Span) {
	if t == nil {
		return ctx, Span{}
	}
	return startSend(ctx, t.t, subject, route, h)
}

func startSend(ctx context.Context, tr trace.Tracer, subject, route string, h http.Header) (context.Context, Span) {
	name := "send " + subject
	if route != "" {
		name = "send " + route
	}
	parent := trace.SpanContextFromContext(ctx)
	ctx, s := tr.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("request"),
			semconv.MessagingDestinationName(subject),
		))
	if route != "" {
		s.SetAttributes(semconv.HTTPRoute(routePath(route)))
	}
	propagator.Inject(withParentState(ctx, parent, s.SpanContext()), propagation.HeaderCarrier(h))
	return ctx, Span{s}
}

// StateKey is metro's tracestate member: the id of the span that made a
// NATS request's span (the gateway's server span, a handler's span), so
// that a message seen on the wire (metro tap) names both its span, in
// traceparent, and that span's parent. W3C trace context lets each
// participant keep one member of its own there.
const StateKey = "metro"

// withParentState returns ctx with sc, whose tracestate also names sc's
// parent span.
func withParentState(ctx context.Context, parent, sc trace.SpanContext) context.Context {
	if !parent.HasSpanID() {
		return ctx
	}
	ts, err := sc.TraceState().Insert(StateKey, parent.SpanID().String())
	if err != nil {
		return ctx
	}
	return trace.ContextWithSpanContext(ctx, sc.WithTraceState(ts))
}

// StartCall starts the client span of a worker-to-worker call when ctx
// holds a recording span (a handler's request context under tracing), on
// that span's provider, and returns a copy of h holding the call's trace
// context. Otherwise it returns h as it is and reports false: the caller
// then passes the incoming traceparent on unchanged.
func StartCall(ctx context.Context, subject string, h http.Header) (http.Header, Span, bool) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return h, Span{}, false
	}
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	_, s := startSend(ctx, parent.TracerProvider().Tracer(ScopeName), subject, "", h)
	return h, s, true
}

// StartHandle starts a worker's server span around a handler, as a child
// of the sender's span named in h's traceparent; the returned request's
// context carries it, so the handler's own spans nest under it.
func (t *Tracer) StartHandle(r *http.Request, subject, group, pattern string) (*http.Request, Span) {
	if t == nil {
		return r, Span{}
	}
	ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, s := t.t.Start(ctx, pattern, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(subject),
			semconv.MessagingConsumerGroupName(group),
			semconv.HTTPRequestMethodKey.String(r.Method),
			semconv.HTTPRoute(routePath(pattern)),
			semconv.URLPath(r.URL.EscapedPath()),
			AttrRequestID.String(r.Header.Get("Metro-Request-Id")),
		))
	return r.WithContext(ctx), Span{s}
}

// Ending says how a span's operation ended.
type Ending struct {
	// Status is the HTTP status answered or received; 0 when there was
	// none (the client left).
	Status int
	// Err is why the operation failed, when it did ("" otherwise).
	Err string
	// At is when it ended; zero means now.
	At time.Time
	// Client marks a client span: 4xx is an error for a client (the
	// HTTP conventions), only 5xx for a server.
	Client bool
}

// End ends the span with the response status. Per the HTTP conventions a
// server span is an error on 5xx, a client span on 4xx and 5xx, and both
// when the operation failed without a status.
func (s Span) End(e Ending) {
	if s.s == nil {
		return
	}
	if e.Status > 0 {
		s.s.SetAttributes(semconv.HTTPResponseStatusCode(e.Status))
	}
	limit := 500
	if e.Client {
		limit = 400
	}
	switch {
	case e.Status >= limit:
		desc := e.Err
		if desc == "" {
			desc = strconv.Itoa(e.Status) + " " + http.StatusText(e.Status)
		}
		s.s.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(e.Status)))
		s.s.SetStatus(codes.Error, desc)
	case e.Status == 0 && e.Err != "":
		s.s.SetAttributes(semconv.ErrorTypeKey.String("_OTHER"))
		s.s.SetStatus(codes.Error, e.Err)
	}
	if e.At.IsZero() {
		s.s.End()
		return
	}
	s.s.End(trace.WithTimestamp(e.At))
}

// IDs returns the trace id and span id of a traceparent header value
// (W3C trace context, version 00 or later), or "" for one that does not parse.
func IDs(traceparent string) (traceID, spanID string) {
	traceID, spanID, _ = MessageIDs(traceparent, "")
	return traceID, spanID
}

// MessageIDs returns what a request message's trace context says: its
// trace, the span that sent it (traceparent's parent-id) and, when metro
// made that span, the span under which it did (tracestate's metro member).
func MessageIDs(traceparent, tracestate string) (traceID, spanID, parentSpanID string) {
	sc := trace.SpanContextFromContext(propagator.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": traceparent, "tracestate": tracestate}))
	if !sc.IsValid() {
		return "", "", ""
	}
	return sc.TraceID().String(), sc.SpanID().String(), sc.TraceState().Get(StateKey)
}

func errorf(format string, args ...any) error { return fmt.Errorf("tracing: "+format, args...) }
