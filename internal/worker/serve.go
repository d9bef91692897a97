package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/net/http/httpguts"

	"github.com/metropolis-dev/metro/internal/stream"
	"github.com/metropolis-dev/metro/internal/subject"
	"github.com/metropolis-dev/metro/internal/wire"
)

// serve answers one request message, or leaves it unanswered when no route
// of this worker matches it: NATS hands a message to one queue member of
// whichever subscription matched, and another worker may own the route.
// It reports whether a handler ran.
func (w *Worker) serve(m *nats.Msg) (ran bool) {
	if w.expired(m) {
		return false // it may have waited in the backlog past its deadline
	}
	start := time.Now()
	if subject.Foreign(w.opts.Prefix, m.Subject) {
		// A reply inbox, a $SRV request, a subject without a method: not
		// a request for this worker, and an answer would land in someone
		// else's exchange.
		return false
	}
	req, cancel, err := w.request(m)
	if err != nil {
		w.log.Warn("malformed request message", "subject", m.Subject, "err", err)
		w.replyProblem(m, http.StatusBadRequest, err.Error(), "")
		return false
	}
	defer cancel()
	ep := w.route(req)
	if ep == nil || !w.owns(req, ep) {
		return false
	}
	rw := &responseWriter{header: make(http.Header)}
	if readsStreams(m) {
		rw.st = &replyStream{w: w, m: m, cancel: cancel}
	}
	req, span := w.tracer.StartHandle(req, m.Subject, w.opts.Name, ep.pattern)
	rw.st.setContext(req.Context())
	status, ok := w.run(rw, req)
	endSpan(span, req, status, ok) // before the reply: the span ends inside the sender's
	if rw.st.started() {
		if !rw.st.finish(rw, ok) {
			status = http.StatusInternalServerError
		}
	} else if req.Context().Err() == context.DeadlineExceeded {
		// Past Metro-Deadline the gateway has stopped waiting and answers
		// 504 itself; a late reply would only race with that answer.
		status = http.StatusGatewayTimeout
	} else if !ok {
		w.replyProblem(m, http.StatusInternalServerError, "the handler panicked", req.Header.Get(wire.HeaderRequestID))
		status = http.StatusInternalServerError
	} else if !w.reply(m, rw) {
		status = http.StatusInternalServerError
	}
	ep.stats.requests.Add(1)
	ep.stats.nanos.Add(int64(time.Since(start)))
	if status >= 500 {
		ep.stats.errors.Add(1)
		msg := strconv.Itoa(status) + " " + http.StatusText(status)
		ep.stats.lastError.Store(&msg)
	}
	return true
}

// owns reports whether this worker runs req. Metro-Service, when present,
// names the one service whose queue group runs it: when two services
// announce the same route, each group gets the message (PROTOCOL.md
// section 5). Metro-Route names the route the caller chose: when routes
// of two workers overlap, both get the message, and only the most
// specific route's worker answers, as one ServeMux would. Without them
// the worker's own match decides.
func (w *Worker) owns(req *http.Request, ep *endpoint) bool {
	if svc := req.Header.Get(wire.HeaderService); svc != "" && svc != w.opts.Name {
		return false
	}
	key := req.Header.Get(wire.HeaderRoute)
	if key == "" {
		return true
	}
	chosen := w.byKey[key]
	return chosen != nil && chosen.pattern == ep.pattern
}

// routed marks the handlers registered with the mux, so that route can
// tell them from the mux's own redirects and errors.
type routed struct{ http.Handler }

// route returns the endpoint that serves req, or nil. The subject cannot
// tell /tree from /tree/ (PROTOCOL.md section 1 drops empty segments), so
// where ServeMux would redirect one to the other, or not match it, the
// other form is served: a redirect would come back on the same subject,
// and no answer would leave the client waiting for the timeout.
func (w *Worker) route(req *http.Request) *endpoint {
	if ep := w.lookup(req); ep != nil {
		return ep
	}
	u := req.URL
	path, raw := u.Path, u.RawPath
	switch {
	case !strings.HasSuffix(path, "/"):
		u.Path += "/"
		if raw != "" {
			u.RawPath += "/"
		}
	case len(path) > 1:
		u.Path, u.RawPath = path[:len(path)-1], strings.TrimSuffix(raw, "/")
	default:
		return nil
	}
	if ep := w.lookup(req); ep != nil {
		return ep
	}
	u.Path, u.RawPath = path, raw
	return nil
}

func (w *Worker) lookup(req *http.Request) *endpoint {
	h, pattern := w.mux.Handler(req)
	if _, ok := h.(routed); !ok {
		return nil
	}
	return w.byPattern[pattern]
}

// run calls the handler through the mux (which fills PathValue) and turns
// a panic into ok == false, so one bad request cannot stop the worker.
func (w *Worker) run(rw *responseWriter, req *http.Request) (status int, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				return
			}
			w.log.Error("handler panic", "method", req.Method, "path", req.URL.Path, "panic", fmt.Sprint(r), "stack", stack())
			status, ok = http.StatusInternalServerError, false
		}
	}()
	w.mux.ServeHTTP(rw, req)
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	return rw.status, true
}

// request builds the *http.Request of a message. The subject is the truth
// for method and path; Metro-Path only says whether the path ended in a
// slash, which the subject cannot hold.
func (w *Worker) request(m *nats.Msg) (*http.Request, context.CancelFunc, error) {
	method, segs, err := subject.Parse(w.opts.Prefix, m.Subject)
	if err != nil {
		return nil, nil, err
	}
	h := requestHeader(m.Header)
	rawPath := subject.EscapePath(segs)
	if len(segs) > 0 && strings.HasSuffix(h.Get(wire.HeaderPath), "/") {
		rawPath += "/"
	}
	u := &url.URL{Path: decodedPath(segs, strings.HasSuffix(rawPath, "/") && len(segs) > 0), RawPath: rawPath, RawQuery: h.Get(wire.HeaderQuery)}
	if u.EscapedPath() == u.Path {
		u.RawPath = ""
	}
	in := &wire.Incoming{
		RequestID:   h.Get(wire.HeaderRequestID),
		TraceParent: h.Get("Traceparent"),
		TraceState:  h.Get("Tracestate"),
	}
	if in.RequestID == "" {
		in.RequestID = wire.NewRequestID()
		h.Set(wire.HeaderRequestID, in.RequestID)
	}
	ctx := wire.WithIncoming(context.Background(), in)
	cancel := context.CancelFunc(func() {})
	if d, ok := wire.Deadline(m.Header); ok {
		ctx, cancel = context.WithDeadline(ctx, d)
	}
	host := h.Get("X-Forwarded-Host")
	if host == "" {
		host = "metro"
	}
	req := &http.Request{
		Method:        method,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          http.NoBody,
		ContentLength: int64(len(m.Data)),
		Host:          host,
		RequestURI:    u.RequestURI(),
		RemoteAddr:    remoteAddr(h.Get("X-Forwarded-For")),
	}
	if len(m.Data) > 0 {
		req.Body = readCloser{bytes.NewReader(m.Data)}
	}
	if subj := wire.Get(m.Header, stream.HeaderStream); subj != "" {
		body, err := w.streamedBody(ctx, subj, m.Data)
		if err != nil {
			cancel()
			return nil, nil, err
		}
		req.Body, req.ContentLength = body, bodyLength(h)
		done := cancel
		cancel = func() { body.Close(); done() }
	}
	return req.WithContext(ctx), cancel, nil
}

// requestHeader returns the message's header as an http.Header. NATS
// keeps header names as sent; the gateway sends them canonical, so the map
// is used as it is unless some other client sent a name in another case.
func requestHeader(nh nats.Header) http.Header {
	canonical := true
	for k := range nh {
		if textproto.CanonicalMIMEHeaderKey(k) != k {
			canonical = false
			break
		}
	}
	if canonical {
		if nh == nil {
			return http.Header{}
		}
		return http.Header(nh)
	}
	h := make(http.Header, len(nh))
	for k, v := range nh {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		h[ck] = append(h[ck], v...)
	}
	return h
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func decodedPath(segs []string, slash bool) string {
	p := "/" + strings.Join(segs, "/")
	if slash {
		p += "/"
	}
	return p
}

// remoteAddr is the client's address as the gateway saw it: the last
// entry of X-Forwarded-For, which the gateway itself appended.
func remoteAddr(xff string) string {
	if i := strings.LastIndexByte(xff, ','); i >= 0 {
		xff = xff[i+1:]
	}
	return strings.TrimSpace(xff)
}

// responseWriter collects a handler's response. A reply is one message,
// sent when the handler returns, unless the handler flushes or writes more
// than one message should hold and the caller reads streams: then it
// streams (stream.go).
type responseWriter struct {
	header      http.Header
	status      int
	body        bytes.Buffer
	wroteHeader bool
	st          *replyStream // nil: the caller reads no streams
}

func (rw *responseWriter) Header() http.Header { return rw.header }

func (rw *responseWriter) WriteHeader(code int) {
	if rw.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 {
		return // informational responses have no place in a single reply
	}
	rw.wroteHeader = true
	rw.status = code
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if _, ok := rw.header["Content-Type"]; !ok && rw.body.Len() == 0 && len(p) > 0 && (rw.st == nil || rw.st.src == nil) {
		// As net/http does, so a handler answers the same here as there.
		rw.header.Set("Content-Type", http.DetectContentType(p))
	}
	if rw.st != nil {
		return rw.st.write(rw, p)
	}
	return rw.body.Write(p)
}

// Flush sends what the handler wrote so far, streaming the reply
// (PROTOCOL.md section 9), when the caller can read a stream; otherwise
// the reply leaves whole when the handler returns.
func (rw *responseWriter) Flush() { _ = rw.FlushError() }

// invalidHeader describes a header that HTTP does not allow ("" when it
// is fine): a name that is not a token, or a value holding control bytes
// (CR and LF would end the header block early, NUL no client expects).
func invalidHeader(k string, vs []string) string {
	if !httpguts.ValidHeaderFieldName(k) {
		return strconv.Quote(k) + " is not a header name"
	}
	for _, v := range vs {
		if !httpguts.ValidHeaderFieldValue(v) {
			return k + ": " + strconv.Quote(v) + " is not a header value"
		}
	}
	return ""
}

// reply sends the handler's response; it reports false when it answered
// 500 instead, because the response could not be sent as it was.
func (w *Worker) reply(m *nats.Msg, rw *responseWriter) bool {
	h, ok := w.replyHeader(m, rw)
	if !ok {
		return false
	}
	body := rw.body.Bytes()
	err := w.respond(m, &nats.Msg{Header: h, Data: body})
	if errors.Is(err, nats.ErrMaxPayload) {
		// nats.go measures headers and body together against the
		// server's max_payload; a client is better told why than left to
		// time out.
		w.replyProblem(m, http.StatusBadGateway, fmt.Sprintf("reply of %d bytes exceeds NATS max_payload of %d", len(body), w.nc.MaxPayload()), m.Header.Get(wire.HeaderRequestID))
		return true
	}
	if err != nil {
		w.log.Warn("sending reply", "subject", m.Subject, "err", err)
	}
	return true
}

// replyHeader makes the reply's header from the handler's; when a header
// cannot be sent it answers 500 instead and reports false.
func (w *Worker) replyHeader(m *nats.Msg, rw *responseWriter) (nats.Header, bool) {
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	// The handler's header map is sent as it is: it is ours, and handlers
	// (as with net/http) must not touch it after they return. A streamed
	// reply sends a copy: the handler goes on running.
	h := nats.Header(rw.header)
	if rw.st != nil {
		h = nats.Header(rw.header.Clone())
	}
	for k, vs := range h {
		switch {
		case strings.HasPrefix(k, "Metro-") || strings.HasPrefix(k, "Nats-"):
			delete(h, k) // the status travels in Metro-Status, set below only
			continue
		case k == wire.StatusHeader || k == "Description":
			// nats.go presents the status line of the server's own
			// messages under exactly these names ("Status: 503" is its
			// "no responders"); sent in lower case, the handler's header
			// cannot be taken for one, and reaches the client unchanged,
			// since HTTP header names ignore case (PROTOCOL.md section 3).
			delete(h, k)
			h[strings.ToLower(k)] = vs
		}
		if bad := invalidHeader(k, vs); bad != "" {
			// nats.go would refuse to send the reply (or send a header
			// block no one can read), and the client would wait for the
			// timeout: tell it now.
			w.log.Error("handler set an invalid header", "subject", m.Subject, "header", bad)
			w.replyProblem(m, http.StatusInternalServerError, "the handler set an invalid header: "+bad, m.Header.Get(wire.HeaderRequestID))
			return nil, false
		}
	}
	if status != http.StatusOK {
		h[wire.HeaderStatus] = []string{strconv.Itoa(status)}
	}
	return h, true
}

// respond sends a reply to m over the worker's own connection, not over
// the one m came in on: during a handoff (see handOff) requests also come
// through a second connection, which may close before the handler is done.
func (w *Worker) respond(m *nats.Msg, rep *nats.Msg) error {
	if m.Reply == "" {
		return nats.ErrMsgNoReply
	}
	rep.Subject = m.Reply
	return w.nc.PublishMsg(rep)
}

func (w *Worker) replyProblem(m *nats.Msg, status int, detail, requestID string) {
	h := nats.Header{
		wire.HeaderStatus: []string{strconv.Itoa(status)},
		"Content-Type":    []string{wire.ProblemContentType},
	}
	if err := w.respond(m, &nats.Msg{Header: h, Data: wire.NewProblem(status, detail, requestID).Body()}); err != nil {
		w.log.Warn("sending reply", "subject", m.Subject, "err", err)
	}
}
