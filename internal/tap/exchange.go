// Package tap watches metro traffic on NATS without taking part in it. It
// subscribes plainly (never in a queue group, never answering) to request
// subjects and to the inbox space, pairs each request with its reply by
// reply subject, and hands each exchange on as it starts and as it ends.
// It hides the pairing, the deadlines that turn a silent request into a
// timeout, and the bounded hand-off between message intake and whatever
// displays it.
package tap

import (
	"time"
)

// Outcome says how an exchange ended, or that it has not yet.
type Outcome uint8

const (
	// Pending: the request awaits its reply. Intake hands on a pending copy
	// when it sees a request, and the finished exchange (same Seq) later.
	Pending Outcome = iota
	// OK: a reply arrived (whatever its status).
	OK
	// Timeout: no reply before the request's deadline.
	Timeout
	// NoResponders: a reply with NATS's "no responders" status. nats-server
	// sends it to the requester alone, so tap sees it only in replies it is
	// handed; see ErrUnserved for what tap reports instead.
	NoResponders
	// Published: a message without a reply subject; nothing to wait for.
	Published
	// Lost: how it ended was dropped before it reached the display (set by
	// the display, never by intake).
	Lost
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Timeout:
		return "timeout"
	case NoResponders:
		return "no_responders"
	case Published:
		return "published"
	case Lost:
		return "lost"
	}
	return "pending"
}

// Failed reports whether the exchange counts as an error: no reply, or a
// server-side (5xx) status.
func (e *Exchange) Failed() bool {
	return e.Outcome == Timeout || e.Outcome == NoResponders || e.Status >= 500 || e.Broken()
}

// Message is one side of an exchange as tap keeps it.
type Message struct {
	Header map[string][]string
	// Body holds at most MaxBody bytes of the payload; Size is its full length.
	Body []byte
	Size int
	// Parts is how many messages a streamed body came in (PROTOCOL.md
	// section 9): the one that started it, each part and the end; 0 for a
	// body in one message.
	Parts int
	// SHA256 is the hex digest of a streamed body, taken only when the
	// exchange is recorded: a body too large to record whole is recorded
	// as its length and digest.
	SHA256 string
}

// Streamed reports whether the body came as a stream of parts.
func (m Message) Streamed() bool { return m.Parts > 0 }

// Truncated reports whether Body holds less than the whole payload.
func (m Message) Truncated() bool { return len(m.Body) < m.Size }

// MaxBody is how much of each payload is kept for the detail view: enough
// to read a JSON document, small enough that a full ring buffer of large
// messages stays within tens of megabytes.
const MaxBody = 8 << 10

// Exchange is one request and its reply, or a request that got none.
type Exchange struct {
	Seq      uint64    // order of arrival at tap, from 1
	Time     time.Time // when tap saw the request
	Deadline time.Time // when tap stops waiting for the reply
	Subject  string
	Reply    string // the reply subject, "" for a plain publish

	// Method and Path are decoded from the subject (PROTOCOL.md section 1),
	// or read from Metro-Method and Metro-Path when the subject is not a
	// metro subject under the prefix; empty when neither says.
	Method    string
	Path      string
	Query     string
	RequestID string

	Outcome Outcome
	Status  int           // the HTTP status the reply carries; 0 without a reply
	Latency time.Duration // request seen to reply seen (or to giving up)
	Worker  string        // the service whose routes cover the subject, when exactly one does
	Route   string        // that service's route pattern that covers it
	Error   string        // Nats-Service-Error text, or why the reply is malformed

	// FirstPart is the time from the request to the reply's first message,
	// which holds the status and the first part of a streamed body;
	// Latency then runs to the end of every stream of the exchange.
	FirstPart time.Duration
	// StreamError says why a streamed body did not arrive whole: it ended
	// with Metro-Stream-Error, a part was missing, its reader cancelled
	// it, or it did not end before the deadline. "" when none broke.
	StreamError string

	Request  Message
	Response Message

	replied bool    // the reply's first message has been seen
	flows   []*flow // streamed bodies still open; intake's own
}

// Broken reports whether a streamed body of the exchange did not arrive
// whole.
func (e *Exchange) Broken() bool { return e.StreamError != "" }

// Streamed says which bodies of the exchange streamed: "request",
// "reply", "both", or "" for none.
func (e *Exchange) Streamed() string {
	switch {
	case e.Request.Streamed() && e.Response.Streamed():
		return "both"
	case e.Request.Streamed():
		return "request"
	case e.Response.Streamed():
		return "reply"
	}
	return ""
}

// Target is what a row shows to identify the request: the decoded path,
// or the raw subject when the subject is not a metro request.
func (e *Exchange) Target() string {
	if e.Path != "" {
		return e.Path
	}
	return e.Subject
}
