package worker

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/wire"
)

// expired reports whether m's Metro-Deadline has passed, counting and
// logging it when so. The gateway has then answered 504 and forgotten the
// request: running the handler would only delay the requests behind it
// until they expire too, the collapse that outlasts an overload.
func (w *Worker) expired(m *nats.Msg) bool {
	d, ok := wire.Deadline(m.Header)
	if !ok {
		return false
	}
	now := time.Now()
	if now.Before(d) {
		return false
	}
	w.metrics.expired.Inc()
	if w.log.Enabled(context.Background(), slog.LevelDebug) {
		w.log.Debug("request expired before a handler took it", "subject", m.Subject,
			"request_id", wire.Get(m.Header, wire.HeaderRequestID), "late", now.Sub(d))
	}
	return true
}

// shed refuses m with 503 and Retry-After, the answer the gateway gives
// when no worker is there: the client learns at once that it may retry,
// rather than waiting out its timeout for a 504. A message this worker
// would not serve (another worker's route, see owns) is left for its
// owner.
func (w *Worker) shed(m *nats.Msg, why string) {
	if m.Reply == "" || !w.claims(m) {
		return
	}
	w.metrics.shed.Inc()
	rid := wire.Get(m.Header, wire.HeaderRequestID)
	w.log.Debug("request shed: "+why, "subject", m.Subject, "request_id", rid)
	const status = http.StatusServiceUnavailable
	h := nats.Header{
		wire.HeaderStatus: []string{strconv.Itoa(status)},
		"Content-Type":    []string{wire.ProblemContentType},
		"Retry-After":     []string{strconv.Itoa(wire.RetryAfterSeconds)},
	}
	body := wire.NewProblem(status, "the worker is at capacity: "+why, rid).Body()
	if err := m.RespondMsg(&nats.Msg{Header: h, Data: body}); err != nil {
		w.log.Warn("sending reply", "subject", m.Subject, "err", err)
	}
}

// claims reports whether m is for this worker to answer. Shedding happens
// when the worker is busiest, so the route the gateway chose (Metro-Route)
// decides when there is one: a route of this worker's, or another's. A
// message without it goes through the route set, as serve would do.
func (w *Worker) claims(m *nats.Msg) bool {
	if key := wire.Get(m.Header, wire.HeaderRoute); key != "" {
		return w.byKey[key] != nil
	}
	req, cancel, err := w.request(m)
	if err != nil {
		return true // malformed: serve would answer it too
	}
	defer cancel()
	ep := w.route(req)
	return ep != nil && w.owns(req, ep)
}
