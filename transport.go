package metro

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/reply"
	"github.com/metropolis-dev/metro/internal/stream"
	"github.com/metropolis-dev/metro/internal/subject"
	"github.com/metropolis-dev/metro/internal/tracing"
	"github.com/metropolis-dev/metro/internal/wire"
)

// Scheme is the URL scheme of requests sent with a Transport:
//
//	metro:///products/42      the Transport's own prefix
//	metro://api/products/42   subject prefix "api"
//
// The host part names a subject prefix, since there are no hosts on NATS.
const Scheme = "metro"

// DefaultCallTimeout bounds a call whose context has no deadline.
const DefaultCallTimeout = 30 * time.Second

// ErrNotRunning is returned by a worker's client before Run has connected.
var ErrNotRunning = errors.New("metro: worker is not running")

// Transport is an http.RoundTripper that sends each request over NATS
// exactly as the gateway would (PROTOCOL.md), so workers call each other
// with a plain http.Client and no HTTP hop. Where the gateway would answer
// an error itself (no worker 503, no reply within Timeout 504, bad path
// 400/414, bad reply 502), the Transport returns that response too, with a
// problem body. Only the end of the request's own context (cancelled, or past its
// deadline, as with http.Client.Timeout) is an error, as with any
// http.RoundTripper.
//
// A call made with the context of a request being handled carries that
// request's id and traceparent, and its deadline never outlives the
// incoming one.
//
// Unlike the gateway, the Transport has no route table: a path that no
// worker serves is 503, not 404. It does follow which services announce
// which routes, so that, like the gateway, it names the one service that
// runs a request when more than one announces its route (PROTOCOL.md
// section 5). That starts with its first request, which waits a moment
// for the services' answers; CloseIdleConnections stops it (a worker's
// Transport stops with the worker).
//
// A call whose NATS connection drops while it waits is answered 503 with
// Retry-After at once, as the gateway answers: its reply would have come
// through the server that is gone. To see the drop, a Transport adds to
// Conn's disconnect handler (keeping the one set before) at its first
// request; like an http.Transport, make one and reuse it.
type Transport struct {
	// Conn is the connection to use; a worker's Client sets Conns instead.
	Conn *nats.Conn
	// Prefix is the subject prefix for metro:/// URLs.
	Prefix string
	// Timeout bounds calls whose context has no deadline (default 30s).
	Timeout time.Duration

	lane func() *reply.Lane                  // the worker's, held
	view func(prefix string) *discovery.View // the worker's
	own  discovery.Views                     // a standalone Transport's

	mu      sync.Mutex
	ownLane *reply.Lane // a standalone Transport's, on Conn
}

// acquire returns the lane to send a request over, held until its
// Release, or nil before the worker runs.
func (t *Transport) acquire() *reply.Lane {
	if t.lane != nil {
		return t.lane()
	}
	if t.Conn == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ownLane == nil || t.ownLane.Conn != t.Conn {
		t.ownLane = reply.NewLane(t.Conn)
	}
	t.ownLane.Hold()
	return t.ownLane
}

// CloseIdleConnections stops following the services' routes; the next
// request starts again. http.Client.CloseIdleConnections calls it.
func (t *Transport) CloseIdleConnections() {
	t.own.Close()
	t.own.Reopen()
}

func (t *Transport) viewOf(nc *nats.Conn, prefix string) *discovery.View {
	if t.view != nil {
		return t.view(prefix)
	}
	return t.own.Get(nc, prefix)
}

// Client returns an http.Client that calls other workers through this
// worker's connection; usable while Run runs.
func (w *Worker) Client() *http.Client {
	return &http.Client{Transport: w.Transport()}
}

// Transport returns the worker's Transport; usable while Run runs.
func (w *Worker) Transport() *Transport {
	return &Transport{Prefix: w.w.Prefix(), lane: w.w.Lane, view: w.w.View}
}

// RoundTrip implements http.RoundTripper. A reply the worker streams
// (PROTOCOL.md section 9) is read as the response body is; a request body
// too large for one message, or of unknown length, streams to a worker
// that reads streamed bodies.
func (t *Transport) RoundTrip(req *http.Request) (_ *http.Response, err error) {
	// What ends with the exchange: the request body once sent, the
	// timeout's context. A streamed response's body ends it on Close.
	var ends []func()
	end := func() {
		for _, f := range ends {
			f()
		}
	}
	defer func() {
		if err != nil {
			end()
		}
	}()
	if req.Body != nil {
		ends = append(ends, func() { req.Body.Close() })
	}
	if req.URL.Scheme != Scheme {
		return nil, fmt.Errorf("metro: unsupported URL scheme %q (want %s://)", req.URL.Scheme, Scheme)
	}
	ln := t.acquire()
	if ln == nil {
		return nil, ErrNotRunning
	}
	// Held until the exchange ends, a streamed reply's included: a lane
	// moves off a server only once nothing is in flight on it.
	ends = append(ends, ln.Release)
	nc := ln.Conn
	ctx := req.Context()
	in := wire.IncomingFrom(ctx)
	clientID := req.Header.Get(wire.ClientRequestID)
	if in != nil && clientID == "" {
		clientID = in.RequestID
	}
	rid := wire.RequestID(clientID)
	prefix := t.Prefix
	if req.URL.Host != "" {
		if err := checkHost(req.URL.Host); err != nil {
			return nil, err
		}
		prefix = req.URL.Host
	}
	path := req.URL.EscapedPath()
	subj, err := subject.FromPath(prefix, req.Method, path)
	if err != nil {
		end()
		return problemResponse(req, wire.PathStatus(err), err.Error(), rid), nil
	}
	// Only a call without a deadline of its own gets the Transport's
	// timeout, whose expiry is a 504 answer. The caller's own deadline is
	// used as it is: a second timer for the same instant could fire first
	// and turn the caller's timeout, an error, into a 504 response.
	exchangeCtx := ctx
	deadline, ok := ctx.Deadline()
	if !ok {
		timeout := t.Timeout
		if timeout <= 0 {
			timeout = DefaultCallTimeout
		}
		deadline = time.Now().Add(timeout)
		var cancel context.CancelFunc
		exchangeCtx, cancel = context.WithDeadline(ctx, deadline)
		ends = append(ends, cancel)
	}
	h, call, traced := tracing.StartCall(ctx, subj, req.Header)
	if !traced && in != nil && in.TraceParent != "" && h.Get("Traceparent") == "" {
		h = h.Clone()
		h.Set("Traceparent", in.TraceParent)
		if in.TraceState != "" {
			h.Set("Tracestate", in.TraceState)
		}
	}
	r := wire.Request{
		Method:      req.Method,
		EscapedPath: path,
		RawQuery:    req.URL.RawQuery,
		Header:      h,
		RequestID:   rid,
		Deadline:    deadline,
		// A caller may pass on the claims it was given (PROTOCOL.md
		// section 8); like every Metro-* header it is otherwise dropped.
		Claims: req.Header.Get(wire.HeaderClaims),
	}
	streams := false
	if v := t.viewOf(nc, prefix); v != nil {
		// The first request waits for the services' first answers, but
		// never for more than half of its own time.
		vctx, cancel := context.WithTimeout(exchangeCtx, time.Until(deadline)/2)
		reg := v.Registry(vctx)
		cancel()
		if reg != nil {
			if st, ok := reg.Match(subj); ok {
				r.Route, r.Service, streams = st.Route.Key(), st.Owner, st.Streams
			}
		}
	}
	var rest io.Reader
	if r.Body, rest, err = callBody(req, nc, streams); err != nil {
		return nil, fmt.Errorf("metro: reading request body: %w", err)
	}
	if rest != nil {
		var stop func()
		if r.Stream, stop, err = upload(exchangeCtx, nc, rest); err != nil {
			return nil, fmt.Errorf("metro: streaming request body: %w", err)
		}
		r.Length = bodyLength(req)
		ends = append([]func(){stop}, ends...)
	}
	msg := r.Msg(subj)
	// The exchange's context alone bounds the wait (no second deadline),
	// for the reason above.
	m, err := ln.Inbox.Request(exchangeCtx, msg, time.Time{})
	rep, err := wire.Result(m, err, rid, nil)
	if err != nil {
		if ctx.Err() != nil {
			call.End(tracing.Ending{Err: ctx.Err().Error()})
			return nil, ctx.Err()
		}
		end()
		var f *wire.Failure
		errors.As(err, &f)
		call.End(tracing.Ending{Status: f.Status, Err: f.Detail, Client: true})
		return problemResponse(req, f.Status, f.Detail, rid), nil
	}
	call.End(tracing.Ending{Status: rep.Status, Client: true})
	if rep.Header == nil {
		rep.Header = http.Header{}
	}
	rep.Header.Set(wire.ClientRequestID, rid)
	if rep.Stream == "" {
		end()
		return response(req, rep.Status, rep.Header, rep.Body), nil
	}
	rd, err := stream.For(nc).NewReader(exchangeCtx, rep.Stream, rep.Body)
	if err != nil {
		return nil, fmt.Errorf("metro: reading streamed reply: %w", err)
	}
	resp := response(req, rep.Status, rep.Header, nil)
	resp.ContentLength = -1
	if n, err := strconv.ParseInt(rep.Header.Get("Content-Length"), 10, 64); err == nil && n >= 0 {
		resp.ContentLength = n
	}
	body := &streamBody{rd: rd, end: end}
	if req.Method == http.MethodHead {
		body.Close()
		return resp, nil
	}
	resp.Body = body
	return resp, nil
}

// callBody reads a request body for its message: whole, or, to a worker
// that reads streamed bodies when it is over half of what a message holds
// or of unknown length, its first part, with the rest to stream.
func callBody(req *http.Request, nc *nats.Conn, streams bool) ([]byte, io.Reader, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil, nil
	}
	if !streams || !stream.Large(nc, bodyLength(req)) {
		b, err := io.ReadAll(req.Body)
		return b, nil, err
	}
	return stream.FirstPart(nc, req.Body)
}

// bodyLength is the length of a request's body, -1 when not known: a
// client request with a body gives 0 for that.
func bodyLength(req *http.Request) int64 {
	if req.ContentLength == 0 {
		return -1
	}
	return req.ContentLength
}

// upload sends rest on a new stream, whose subject it returns, as the
// worker pulls it; stop ends it.
func upload(ctx context.Context, nc *nats.Conn, rest io.Reader) (subject string, stop func(), err error) {
	src, err := stream.For(nc).NewSource()
	if err != nil {
		return "", nil, err
	}
	// The goroutine ends when the body does, or the exchange: not
	// waited for, since the caller's body may block in Read until it is
	// closed, which comes after.
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer src.Close()
		_ = src.SendFrom(ctx, rest, nil)
	}()
	return src.Subject(), cancel, nil
}

// streamBody is the body of a streamed response; Close ends the exchange
// (cancelling the stream when it was not read to its end).
type streamBody struct {
	rd     *stream.Reader
	end    func()
	once   sync.Once
	closed atomic.Bool
}

var errBodyClosed = errors.New("metro: read on closed response body")

func (b *streamBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errBodyClosed
	}
	return b.rd.Read(p)
}

func (b *streamBody) Close() error {
	b.closed.Store(true)
	b.once.Do(func() {
		b.rd.Close()
		b.end()
	})
	return nil
}

// checkHost refuses a URL host that no gateway could have as its prefix:
// a URL built from untrusted input must not reach system subjects ($...),
// reply inboxes or wildcards.
func checkHost(host string) error {
	if err := subject.CheckPrefix(host); err != nil {
		return fmt.Errorf("metro: URL host is not a subject prefix: %w", err)
	}
	return nil
}

func problemResponse(req *http.Request, status int, detail, rid string) *http.Response {
	h := http.Header{"Content-Type": {wire.ProblemContentType}, wire.ClientRequestID: {rid}}
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(wire.RetryAfterSeconds))
	}
	return response(req, status, h, wire.NewProblem(status, detail, rid).Body())
}

func response(req *http.Request, status int, h http.Header, body []byte) *http.Response {
	rc := io.NopCloser(bytes.NewReader(body))
	if req.Method == http.MethodHead {
		// A worker's GET handler answers HEAD with its whole body, as it
		// would over HTTP, where net/http drops it; so does the Transport,
		// keeping the length a GET would have.
		rc = http.NoBody
	}
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          rc,
		ContentLength: int64(len(body)),
		Request:       req,
	}
}
