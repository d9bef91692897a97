package proxy

import "github.com/metropolis-dev/metro/internal/tracing"

// endSpans ends a request's spans with what it did: the NATS request's at
// the moment its reply came, the server span now.
func (g *Gateway) endSpans(span tracing.Span, x *exchange) {
	if !span.Recording() {
		return
	}
	if x.route != nil {
		span.SetRoute(x.route.pattern)
	}
	x.send.End(tracing.Ending{Status: x.status, Err: x.err, At: x.sent, Client: true})
	span.End(tracing.Ending{Status: x.status, Err: x.err})
}
