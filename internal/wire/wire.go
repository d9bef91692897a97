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
	"golang.org/x/net/http/httpguts"
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
	// HeaderService names the service whose queue group runs the request
	// (version 2): when more than one service announces its route, every
	// group gets the message, and the others decline it.
	HeaderService = "Metro-Service"
	// HeaderClaims carries the claims of the bearer token the gateway
	// verified: the token's payload, base64url JSON (PROTOCOL.md 8).
	HeaderClaims = "Metro-Claims"

	// HeaderStream names the stream subject the rest of a message's body
	// is pulled from (version 3, PROTOCOL.md section 9).
	HeaderStream = "Metro-Stream"

	// Version is the protocol version sent on every request.
	Version = "3"

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
	// Service, when set, is sent as Metro-Service.
	Service string
	// Claims, when set, is sent as Metro-Claims.
	Claims string
	// Stream, when set, names the stream the rest of Body is pulled from
	// (Metro-Stream, PROTOCOL.md section 9), and Length is then the whole
	// body's length, sent as Content-Length unless negative (not known).
	Stream string
	Length int64
}

// Forwarded are the X-Forwarded-* values the gateway sends.
type Forwarded struct {
	For, Host, Proto string
	// Untrusted drops every header that names the client's address or
	// the URL it used (see isClientClaim): the peer is not a proxy the
	// gateway trusts, so what it says about the client is its own claim.
	Untrusted bool
}

// isClientClaim reports whether the canonical header name k is one that
// proxies set to describe the client (RFC 7239 Forwarded, the X-Forwarded-*
// family, and the single-address headers of nginx, Akamai and others). A
// worker or its framework may take any of them as the client's address,
// scheme or path prefix, so from an untrusted peer none may pass.
func isClientClaim(k string) bool {
	switch k {
	case "Forwarded", "X-Real-Ip", "True-Client-Ip", "X-Client-Ip":
		return true
	}
	return strings.HasPrefix(k, "X-Forwarded-")
}

// Msg returns the NATS message for r on subject subj. Forwarded headers
// are set after the copy, so nothing the client sent can override them.
func (r *Request) Msg(subj string) *nats.Msg {
	h := make(nats.Header, len(r.Header)+10)
	connection := r.Header["Connection"]
	strip := r.Forwarded != nil && r.Forwarded.Untrusted
	for k, v := range r.Header {
		// Expect is answered by the HTTP server that read the body
		// (RFC 9110 section 10.1.1); the message carries the body whole,
		// so a worker has nothing left to expect.
		if isReserved(k) || isHop(k, connection) || strip && isClientClaim(k) || k == "Expect" {
			continue
		}
		h[k] = v
	}
	// One backing array for the values this function sets: a request
	// costs one allocation for them instead of one per header.
	vals := make([]string, 0, 13)
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
	if r.Service != "" {
		set(HeaderService, r.Service)
	}
	if r.Claims != "" {
		set(HeaderClaims, r.Claims)
	}
	if r.Stream != "" {
		set(HeaderStream, r.Stream)
		if r.Length >= 0 {
			set("Content-Length", strconv.FormatInt(r.Length, 10))
		}
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
	// Stream, when set, is the subject the rest of Body is pulled from
	// (Metro-Stream, PROTOCOL.md section 9).
	Stream string
}

// ReadReply reads a reply message (PROTOCOL.md section 3) into an HTTP
// status, headers (added to dst, or a new map when dst is nil) and body.
// It fails with ErrBadReply, touching nothing, when the reply cannot be
// an answer: Metro-Status is not a status code, the header block did not
// decode, a header name or value is not one HTTP allows, or the message is
// a NATS status (CheckStatusMessage) rather than a reply. A service error
// without a body gets a problem body naming the error, with requestID.
func ReadReply(m *nats.Msg, requestID string, dst http.Header) (Reply, error) {
	if err := checkReplyHeader(m); err != nil {
		return Reply{}, err
	}
	rep := Reply{Status: http.StatusOK, Body: m.Data, Header: dst, Stream: Get(m.Header, HeaderStream)}
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

// StatusHeader is the header name under which nats.go presents the status
// line of a message the NATS server makes itself ("NATS/1.0 503" for no
// responders, 408 for a request timeout, ...). nats.go keeps header names
// as sent, so only this exact spelling is the status line: workers send
// their own header of that name in another case (PROTOCOL.md section 3).
const StatusHeader = "Status"

// IsNoResponders reports whether m is the server's "no responders" status
// message: NATS had nobody to deliver the request to.
func IsNoResponders(m *nats.Msg) bool {
	if len(m.Data) != 0 || len(m.Header) == 0 {
		return false
	}
	st := m.Header[StatusHeader]
	return len(st) > 0 && st[0] == "503" && !isWorkerReply(m.Header)
}

// isWorkerReply reports whether h carries a header only a worker sets:
// the server's own status messages have none.
func isWorkerReply(h nats.Header) bool {
	for k := range h {
		if len(k) > 6 && strings.EqualFold(k[:6], "Metro-") {
			return true
		}
	}
	return false
}

// checkReplyHeader fails with ErrBadReply for a reply whose header cannot
// become an HTTP response's: nats.go hands on a message whose header
// block it could not decode with no header at all, and keeps any byte but
// CR and LF in names and values, NUL included.
func checkReplyHeader(m *nats.Msg) error {
	if m.Header == nil {
		if m.Size() > len(m.Subject)+len(m.Reply)+len(m.Data) {
			return &badReplyError{"reply has a header block that does not decode"}
		}
		return nil
	}
	if st := m.Header[StatusHeader]; len(st) > 0 && len(m.Data) == 0 && !isWorkerReply(m.Header) {
		desc := ""
		if d := m.Header["Description"]; len(d) > 0 {
			desc = " " + d[0]
		}
		return &badReplyError{"NATS answered with status " + strconv.Quote(st[0]+desc) + " instead of a worker's reply"}
	}
	for k, vs := range m.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return &badReplyError{"reply has a header name that HTTP does not allow: " + strconv.Quote(k)}
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return &badReplyError{"reply header " + k + " has a value that HTTP does not allow: " + strconv.Quote(v)}
			}
		}
	}
	return nil
}

type badReplyError struct{ why string }

func (e *badReplyError) Error() string { return e.why }
func (e *badReplyError) Unwrap() error { return ErrBadReply }

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
