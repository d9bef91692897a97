// Package wire is the one place that turns HTTP requests into NATS request
// messages and NATS replies back into HTTP responses (PROTOCOL.md sections
// 2 to 4). The gateway and metro.Transport both build requests and read
// replies here, so the two can never disagree about a header.
package wire

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Header names of the protocol.
const (
	HeaderMethod    = "Metro-Method"
	HeaderPath      = "Metro-Path"
	HeaderQuery     = "Metro-Query"
	HeaderRequestID = "Metro-Request-Id"
	HeaderDeadline  = "Metro-Deadline"
	HeaderStatus    = "Metro-Status"
	HeaderVersion   = "Metro-Version"
	// HeaderRoute names the route the gateway chose (discovery.Route.Key):
	// when workers' routes overlap, every worker whose subscription matches
	// gets the message, and only the one owning this route answers.
	HeaderRoute = "Metro-Route"

	// Version is the protocol version sent on every request.
	Version = "1"

	// The micro convention for service errors (nats.go micro.ErrorHeader
	// and micro.ErrorCodeHeader).
	HeaderServiceError     = "Nats-Service-Error"
	HeaderServiceErrorCode = "Nats-Service-Error-Code"

	// ClientRequestID is the HTTP header that carries the request id.
	ClientRequestID = "X-Request-Id"
)

// isHop reports whether the canonical header name k is hop-by-hop: one
// of RFC 9110 section 7.6.1's list (with the older RFC 7230 names that
// proxies still honour), or one the message's Connection header names.
// Hop-by-hop headers describe one connection, so they never cross the
// gateway in either direction.
func isHop(k string, connection []string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	if strings.HasPrefix(k, "Proxy-") { // Proxy-Connection, -Authenticate, -Authorization
		return true
	}
	for _, v := range connection {
		for _, f := range strings.Split(v, ",") {
			if f = textproto.TrimString(f); f != "" && textproto.CanonicalMIMEHeaderKey(f) == k {
				return true
			}
		}
	}
	return false
}

// isReserved reports whether a canonical header name belongs to the
// protocol: only the gateway sets Metro-*, and Nats-* are NATS's own.
func isReserved(k string) bool {
	return strings.HasPrefix(k, "Metro-") || strings.HasPrefix(k, "Nats-")
}

// Request is what a request message is made from.
type Request struct {
	Method      string
	EscapedPath string
	RawQuery    string
	// Header holds the end-to-end headers to send; hop-by-hop and Metro-*
	// headers in it are dropped.
	Header    http.Header
	RequestID string
	Deadline  time.Time
	Body      []byte
	// Forwarded, when set, replaces any X-Forwarded-* in Header.
	Forwarded *Forwarded
	// Route, when set, is sent as Metro-Route.
	Route string
}

// Forwarded are the X-Forwarded-* values the gateway sends.
type Forwarded struct{ For, Host, Proto string }

// Msg returns the NATS message for r on subject subj. Forwarded headers
// are set after the copy, so nothing the client sent can override them.
func (r *Request) Msg(subj string) *nats.Msg {
	h := make(nats.Header, len(r.Header)+9)
	connection := r.Header["Connection"]
	for k, v := range r.Header {
		// Expect is answered by the HTTP server that read the body
		// (RFC 9110 section 10.1.1); the message carries the body whole,
		// so a worker has nothing left to expect.
		if isReserved(k) || isHop(k, connection) || k == "Expect" {
			continue
		}
		h[k] = v
	}
	// One backing array for the values this function sets: a request
	// costs one allocation for them instead of one per header.
	vals := make([]string, 0, 8)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if f := r.Forwarded; f != nil {
		set("X-Forwarded-For", f.For)
		set("X-Forwarded-Host", f.Host)
		set("X-Forwarded-Proto", f.Proto)
	}
	h[HeaderVersion] = versionValue
	set(HeaderMethod, r.Method)
	set(HeaderPath, r.EscapedPath)
	if r.RawQuery != "" {
		set(HeaderQuery, r.RawQuery)
	}
	set(HeaderRequestID, r.RequestID)
	if r.Route != "" {
		set(HeaderRoute, r.Route)
	}
	if !r.Deadline.IsZero() {
		set(HeaderDeadline, strconv.FormatInt(r.Deadline.UnixMilli(), 10))
	}
	return &nats.Msg{Subject: subj, Header: h, Data: r.Body}
}

// versionValue is shared by every request: messages are only read.
var versionValue = []string{Version}

// RequestID returns the client's id when it is 1 to 128 bytes of
// A-Z a-z 0-9 - _ . : + / =, and a new random id otherwise.
func RequestID(client string) string {
	if ValidRequestID(client) {
		return client
	}
	return NewRequestID()
}

// ValidRequestID reports whether id may be passed on as a request id.
func ValidRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.:+/=", c) >= 0) {
			return false
		}
	}
	return true
}

// NewRequestID returns 128 random bits in hex.
func NewRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Deadline reads Metro-Deadline from a request message; ok is false when
// it is absent or malformed.
func Deadline(h nats.Header) (time.Time, bool) {
	v := Get(h, HeaderDeadline)
	if v == "" {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// Get returns the first value of header k in h, matching the name without
// regard to case: NATS keeps header case as sent, and clients in other
// languages send what they like.
func Get(h nats.Header, k string) string {
	if v, ok := h[k]; ok && len(v) > 0 {
		return v[0]
	}
	for name, v := range h {
		if len(v) > 0 && strings.EqualFold(name, k) {
			return v[0]
		}
	}
	return ""
}

// Errors of reading a reply.
var ErrBadReply = errors.New("malformed reply")

// Reply is a NATS reply read as an HTTP response.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
	// ServiceError is the Nats-Service-Error text of a micro error reply.
	ServiceError string
}

// ReadReply reads a reply message (PROTOCOL.md section 3) into an HTTP
// status, headers (added to dst, or a new map when dst is nil) and body.
// It fails with ErrBadReply, touching nothing, when Metro-Status is not a
// status code. A service error without a body gets a problem body naming
// the error, with requestID.
func ReadReply(m *nats.Msg, requestID string, dst http.Header) (Reply, error) {
	rep := Reply{Status: http.StatusOK, Body: m.Data, Header: dst}
	if status := Get(m.Header, HeaderStatus); status != "" {
		code, ok := parseStatus(status)
		if !ok {
			return Reply{}, &replyError{status}
		}
		rep.Status = code
	} else if svcCode := Get(m.Header, HeaderServiceErrorCode); svcCode != "" {
		code, err := strconv.Atoi(svcCode)
		if err != nil || code < 400 || code > 599 {
			code = http.StatusInternalServerError
		}
		rep.Status = code
		rep.ServiceError = Get(m.Header, HeaderServiceError)
		if rep.ServiceError == "" {
			rep.ServiceError = "service error " + svcCode
		}
	}
	if rep.Header == nil {
		rep.Header = make(http.Header, len(m.Header))
	}
	connection := m.Header["Connection"]
	for k, v := range m.Header {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if len(v) == 0 || isReserved(ck) || isHop(ck, connection) {
			continue
		}
		rep.Header[ck] = append(rep.Header[ck], v...)
	}
	if rep.ServiceError != "" && len(rep.Body) == 0 {
		rep.Body = NewProblem(rep.Status, rep.ServiceError, requestID).Body()
		rep.Header["Content-Type"] = []string{ProblemContentType}
	}
	return rep, nil
}

// Failure is an exchange that got no usable reply: the status and detail
// to answer with instead.
type Failure struct {
	Status int
	Detail string
	Err    error
}

func (f *Failure) Error() string { return f.Detail }
func (f *Failure) Unwrap() error { return f.Err }

// Exchange sends msg as a request on nc and reads its reply.
func Exchange(ctx context.Context, nc *nats.Conn, msg *nats.Msg, requestID string) (Reply, error) {
	m, err := nc.RequestMsgWithContext(ctx, msg)
	return Result(m, err, requestID, nil)
}

// Result reads the outcome of a request: its reply m, or the error of
// sending it. Every failure is a *Failure carrying the status the gateway
// answers for it.
func Result(m *nats.Msg, err error, requestID string, dst http.Header) (Reply, error) {
	if err != nil {
		status, detail := ErrorStatus(err)
		return Reply{}, &Failure{Status: status, Detail: detail, Err: err}
	}
	rep, err := ReadReply(m, requestID, dst)
	if err != nil {
		return rep, &Failure{Status: http.StatusBadGateway, Detail: err.Error(), Err: err}
	}
	return rep, nil
}

type replyError struct{ status string }

func (e *replyError) Error() string {
	return "reply has Metro-Status " + strconv.Quote(e.status) + ", not a status code"
}
func (e *replyError) Unwrap() error { return ErrBadReply }

// parseStatus accepts exactly three digits, 200 to 599: informational
// statuses cannot be the one reply to a request.
func parseStatus(s string) (int, bool) {
	if len(s) != 3 {
		return 0, false
	}
	n := 0
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n >= 200 && n <= 599
}

// Incoming is what a worker knows of the request it is handling, kept in
// the handler's context so that calls it makes to other workers carry the
// same request id and trace, and never outlive its deadline.
type Incoming struct {
	RequestID   string
	TraceParent string
	TraceState  string
}

type incomingKey struct{}

// WithIncoming returns ctx carrying in.
func WithIncoming(ctx context.Context, in *Incoming) context.Context {
	return context.WithValue(ctx, incomingKey{}, in)
}

// IncomingFrom returns the incoming request of ctx, or nil.
func IncomingFrom(ctx context.Context) *Incoming {
	in, _ := ctx.Value(incomingKey{}).(*Incoming)
	return in
}
