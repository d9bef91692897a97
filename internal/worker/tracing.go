package worker

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel"

	"github.com/metropolis-dev/metro/internal/tracing"
)

// startTracing picks the worker's tracer provider: the one in Options, or
// one built from the OTEL_* variables, which then also becomes the global
// provider so that a handler's own spans (otel.Tracer(...).Start with
// r.Context()) are exported with the worker's and nest under them. The
// returned func flushes what is still buffered.
func (w *Worker) startTracing(ctx context.Context) (stop func(), err error) {
	if w.opts.TracerProvider != nil {
		w.tracer = tracing.New(w.opts.TracerProvider)
		return func() {}, nil
	}
	tp, err := tracing.NewProvider(ctx, tracing.Options{Service: w.opts.Name})
	if err != nil {
		return nil, err
	}
	if tp == nil {
		return func() {}, nil
	}
	otel.SetTracerProvider(tp)
	w.tracer = tracing.New(tp)
	return func() {
		if err := tracing.Shutdown(tp); err != nil {
			w.log.Warn("flushing spans", "err", err)
		}
	}, nil
}

// endSpan ends a handler's span with the status the sender will see: the
// gateway answers 504 itself past the deadline, and 500 for a panic.
func endSpan(span tracing.Span, req *http.Request, status int, ok bool) {
	if !span.Recording() {
		return
	}
	e := tracing.Ending{Status: status}
	switch {
	case req.Context().Err() == context.DeadlineExceeded:
		e = tracing.Ending{Status: http.StatusGatewayTimeout, Err: "the handler ran past the request's deadline"}
	case !ok:
		e = tracing.Ending{Status: http.StatusInternalServerError, Err: "the handler panicked"}
	}
	span.End(e)
}
