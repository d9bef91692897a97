package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/stream"
	"github.com/metropolis-dev/metro/internal/wire"
)

// bodyError is why a streamed request body failed, with the status the
// client gets for it.
type bodyError struct {
	status int
	err    error
}

func (e *bodyError) Error() string { return e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// upload sends the rest of a request body, after its first part, as its
// worker pulls it (PROTOCOL.md section 9). A body that fails (too large,
// too slow, the client gone) cancels ctx with a *bodyError, so that the
// client is answered at once rather than when the worker gives up.
type upload struct {
	src         *stream.Source
	stopSending context.CancelFunc
	done        chan struct{}
}

// startUpload streams the rest of a body of at most maxBody bytes, whose
// first part was already read, over nc until deadline. fail ends the
// exchange when the body fails.
func startUpload(ctx context.Context, deadline time.Time, nc *nats.Conn, body io.Reader, maxBody int64, fail context.CancelCauseFunc) (*upload, error) {
	src, err := stream.For(nc).NewSource()
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithDeadline(ctx, deadline)
	u := &upload{src: src, stopSending: stop, done: make(chan struct{})}
	go func() {
		defer close(u.done)
		_ = src.SendFrom(ctx, body, func(err error) {
			// The exchange ends first: a worker's answer to the failed
			// body must find the client's own answer already decided.
			status, err := bodyFailure(err, maxBody)
			fail(&bodyError{status: status, err: err})
		})
	}()
	return u, nil
}

// stop ends the upload and waits for its goroutine. A read of the client's
// body that blocks (a slow client) is cut short through the connection's
// read deadline, since the body must not be read after ServeHTTP returns.
func (u *upload) stop(w http.ResponseWriter) {
	u.stopSending()
	select {
	case <-u.done:
	default:
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		<-u.done
	}
	u.src.Close()
}

// relay writes a streamed reply to the client part by part, flushing each
// as it comes, so that events reach the client when the handler sends
// them and a slow client holds the worker back instead of the gateway
// buffering the body. It reports false when the stream broke after the
// status was sent: the response must then end visibly incomplete.
func (g *Gateway) relay(ctx context.Context, w http.ResponseWriter, head bool, nc *nats.Conn, rep wire.Reply, x *exchange) bool {
	rd, err := stream.For(nc).NewReader(ctx, rep.Stream, rep.Body)
	if err != nil {
		x.status, x.err = http.StatusBadGateway, err.Error()
		wire.WriteProblem(w, x.status, "the gateway could not read the streamed reply", w.Header().Get(wire.ClientRequestID), 0)
		return true
	}
	defer rd.Close() // a stream not read to its end is cancelled
	h := w.Header()
	if cl := h["Content-Length"]; len(cl) != 1 || !validLength(cl[0]) {
		delete(h, "Content-Length") // chunked: the end shows whether it is whole
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil
	}
	x.status = rep.Status
	w.WriteHeader(rep.Status)
	if head {
		return true // no body to send: the stream is cancelled
	}
	rc := http.NewResponseController(w)
	defer func() { x.parts = rd.Parts }()
	for {
		part, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil && errors.Is(context.Cause(ctx), errEventStreamsEnded) {
			x.err = "event stream ended: " + errEventStreamsEnded.Error()
			return true
		}
		if err != nil {
			if ctx.Err() != nil && context.Cause(ctx) == context.Canceled {
				x.status, x.err = statusClientGone, "client went away during the streamed reply"
				return true
			}
			x.err = "the streamed reply broke: " + err.Error()
			g.log.Error("streamed reply broke", "request_id", h.Get(wire.ClientRequestID), "subject", x.subject, "bytes", x.bytes, "err", err)
			return false
		}
		n, err := w.Write(part)
		x.bytes += n
		if err == nil && !rd.Ready() {
			// Parts that came together leave in one write: a flush (a
			// system call) per part was most of the gateway's work.
			err = rc.Flush()
		}
		if err != nil {
			x.status, x.err = statusClientGone, fmt.Sprintf("the streamed %d reply could not be sent: %v", rep.Status, err)
			return true
		}
	}
}

// errEventStreamsEnded is why an event stream ended at a stop.
var errEventStreamsEnded = errors.New("the gateway is stopping")

// EndEventStreams ends every event stream (a streamed reply of type
// text/event-stream) being relayed, and any that starts later, whole: the
// client gets the response's end, the worker a cancel. An event stream
// has no end of its own, so a gateway that waited for it before stopping
// would wait for the route's timeout, while an EventSource reconnects by
// itself, to a gateway that is not stopping. Other streams (downloads,
// reports) are left to finish. Server.Run calls it when it stops.
func (g *Gateway) EndEventStreams() { g.endEventStreams() }

// untilEventStreamsEnd is ctx, ended too by EndEventStreams; release
// frees what it holds once the stream is over.
func (g *Gateway) untilEventStreamsEnd(ctx context.Context) (_ context.Context, release func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(g.eventStreams, func() { cancel(errEventStreamsEnded) })
	return ctx, func() { stop(); cancel(nil) }
}

// isEventStream reports whether a reply's header says it is server-sent
// events.
func isEventStream(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "text/event-stream"
}

func validLength(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n >= 0
}
