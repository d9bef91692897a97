// Package recording is the file format of recorded metro traffic: NDJSON,
// one finished exchange (request and reply) per line, as `metro tap
// --record` writes it and `metro replay`, `metro mock` and the metrotest
// package read it. It hides the body encoding (text where UTF-8, base64
// otherwise, so bodies round-trip byte for byte), the redaction of
// secrets before anything is written, and a strict reader that names the
// line of every mistake in a truncated or hand-edited file.
package recording

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Exchange is one recorded request and its reply.
type Exchange struct {
	Time    time.Time `json:"time"`
	Subject string    `json:"subject"`
	// Method and Path (escaped, as on the wire) are empty for a message
	// on a subject that is not a metro request.
	Method string `json:"method,omitempty"`
	Path   string `json:"path,omitempty"`
	Query  string `json:"query,omitempty"`
	// Route is the pattern of the announced route that covered the
	// request ("GET /products/{id}"), when tap knew it.
	Route     string  `json:"route,omitempty"`
	RequestID string  `json:"request_id,omitempty"`
	Worker    string  `json:"worker,omitempty"`
	LatencyMS float64 `json:"latency_ms"`
	// Outcome is ok (a reply is recorded), timeout, no_responders or
	// published, as metro tap reports it.
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`

	Request Message `json:"request"`
	// Claims are the verified token claims the gateway passed to the
	// worker (Metro-Claims, PROTOCOL.md section 8: base64url JSON), so a
	// replay reaches the worker as the same caller. Claims say who called,
	// as a user id in a log line does; they are no credential.
	Claims string `json:"claims,omitempty"`
	// Status, ReplyHeader and the reply body are what an HTTP client got
	// (PROTOCOL.md section 3), present when Outcome is ok.
	Status int      `json:"status,omitempty"`
	Reply  *Message `json:"reply,omitempty"`
	// StreamError says why a streamed body (PROTOCOL.md section 9) did
	// not arrive whole: what is recorded of it is what crossed before it
	// broke.
	StreamError string `json:"stream_error,omitempty"`

	// Line is where the exchange was read from (1-based; 0 when not read).
	Line int `json:"-"`
}

// Outcomes of an exchange.
const (
	OutcomeOK           = "ok"
	OutcomeTimeout      = "timeout"
	OutcomeNoResponders = "no_responders"
	OutcomePublished    = "published"
)

// Replied reports whether the exchange has a reply to compare with or
// to answer from.
func (e *Exchange) Replied() bool { return e.Outcome == OutcomeOK && e.Reply != nil }

// Target is "METHOD /path?query", or the subject of a non-metro message.
func (e *Exchange) Target() string {
	if e.Path == "" {
		return e.Subject
	}
	s := e.Method + " " + e.Path
	if e.Query != "" {
		s += "?" + e.Query
	}
	return s
}

// Message is one side of an exchange: HTTP headers and the body.
type Message struct {
	Header http.Header
	Body   []byte
	// Parts is how many messages a streamed body crossed the bus in; 0
	// for one message.
	Parts int
	// Omitted, when set, stands for a streamed body too large to record:
	// Body is then empty and the body is known by its length and digest.
	Omitted *Omitted
}

// Omitted is a body that was not recorded, known by its length and its
// SHA-256 digest (hex).
type Omitted struct {
	Length int    `json:"length"`
	SHA256 string `json:"sha256"`
}

// Matches reports whether body is the one that was not recorded.
func (o *Omitted) Matches(body []byte) bool {
	sum := sha256.Sum256(body)
	return len(body) == o.Length && hex.EncodeToString(sum[:]) == o.SHA256
}

func (o *Omitted) String() string {
	return fmt.Sprintf("%d bytes with SHA-256 %s (not recorded)", o.Length, o.SHA256)
}

// message is Message on the wire: the body as text when it is UTF-8 (a
// person can read and edit it), otherwise as base64.
type message struct {
	Header     http.Header `json:"headers,omitempty"`
	Body       *string     `json:"body,omitempty"`
	BodyBase64 *string     `json:"body_base64,omitempty"`
	Parts      int         `json:"parts,omitempty"`
	Omitted    *Omitted    `json:"body_omitted,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (m Message) MarshalJSON() ([]byte, error) {
	out := message{Header: m.Header, Parts: m.Parts, Omitted: m.Omitted}
	switch {
	case len(m.Body) == 0:
	case utf8.Valid(m.Body):
		s := string(m.Body)
		out.Body = &s
	default:
		s := base64.StdEncoding.EncodeToString(m.Body)
		out.BodyBase64 = &s
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON implements json.Unmarshaler, strictly: unknown fields and
// a body given both ways are errors.
func (m *Message) UnmarshalJSON(b []byte) error {
	var in message
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return err
	}
	*m = Message{Header: in.Header, Parts: in.Parts, Omitted: in.Omitted}
	switch {
	case in.Body != nil && in.BodyBase64 != nil:
		return errors.New("body and body_base64 are both set; keep one")
	case in.Omitted != nil && (in.Body != nil || in.BodyBase64 != nil):
		return errors.New("body_omitted stands for a body that was not recorded, but the body is set too; keep one")
	case in.Omitted != nil && (in.Omitted.Length < 0 || len(in.Omitted.SHA256) != 2*sha256.Size):
		return errors.New("body_omitted: want a length and a 64-digit hex sha256")
	case in.Body != nil:
		m.Body = []byte(*in.Body)
	case in.BodyBase64 != nil:
		body, err := base64.StdEncoding.DecodeString(*in.BodyBase64)
		if err != nil {
			return fmt.Errorf("body_base64: %w", err)
		}
		m.Body = body
	}
	return nil
}

// Redacted is what replaces the value of a secret header.
const Redacted = "[redacted]"

// DefaultRedact are the headers whose values are never written:
// credentials (RFC 9110 section 11) and session cookies (RFC 6265).
var DefaultRedact = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie"}

// IsRedacted reports whether a header value is the redaction marker: a
// replay leaves such a header out instead of sending the marker.
func IsRedacted(v string) bool { return v == Redacted }

// redactor replaces the values of named headers, compared case-insensitively.
type redactor map[string]bool

func newRedactor(extra []string) redactor {
	r := redactor{}
	for _, n := range append(append([]string(nil), DefaultRedact...), extra...) {
		r[http.CanonicalHeaderKey(strings.TrimSpace(n))] = true
	}
	return r
}

func (r redactor) header(h http.Header) http.Header {
	if len(h) == 0 {
		return nil
	}
	out := make(http.Header, len(h))
	for k, vs := range h {
		ck := http.CanonicalHeaderKey(k)
		if !r[ck] {
			out[ck] = append(out[ck], vs...)
			continue
		}
		for range vs {
			out[ck] = append(out[ck], Redacted)
		}
	}
	return out
}
