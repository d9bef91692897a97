package tap

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/stream"
)

// A streamed body (PROTOCOL.md section 9) crosses the bus as many
// messages: the request or reply that names its stream subject, then the
// reader's pulls to that subject, each answered by one part on the
// pull's own reply subject. Tap reads the pulls only to learn which reply
// subject belongs to which stream, so that every part is counted into its
// exchange; pulls, pings and cancels never become exchanges of their own.

// streamRoot is the subject space of stream subjects.
const streamRoot = stream.Root + "."

// maxPullsPerStream bounds the pulls remembered for one stream. A reader
// keeps at most 16 in flight; the rest are pulls its holder dropped as
// stale (the reader sent a fresh window), which will never be answered.
const maxPullsPerStream = 64

// DefaultRecordMaxStream is how much of a streamed body a recording
// holds whole; a larger one is recorded as its length and digest.
const DefaultRecordMaxStream = 16 << 20

// flow follows one streamed body of an exchange.
type flow struct {
	ex      *Exchange
	side    *Message // &ex.Request or &ex.Response
	name    string   // "request" or "reply"
	subject string   // the stream subject
	pulls   []string // reply subjects of pulls not yet answered, oldest first
	got     int      // the last part number seen
	hash    hash.Hash
	// length is the request body's Content-Length, -1 when not known: a
	// body whose reader stopped after all of it came is whole, even
	// though its end was never pulled.
	length int
}

// follow starts following the stream on subject, whose first part is
// side's body so far.
func (p *Pairer) follow(ex *Exchange, side *Message, name, subject string, first []byte, length int) {
	if _, dup := p.streams[subject]; dup {
		return
	}
	f := &flow{ex: ex, side: side, name: name, subject: subject, length: length}
	if p.maxBody < 0 {
		f.hash = sha256.New()
		f.hash.Write(first)
	}
	side.Parts = 1
	p.streams[subject] = f
	ex.flows = append(ex.flows, f)
}

// streamMessage takes a message to a stream subject: a pull, whose reply
// subject is where the next part will come, or a control message.
func (p *Pairer) streamMessage(m *nats.Msg, now time.Time) (Exchange, bool) {
	f, ok := p.streams[m.Subject]
	if !ok {
		return Exchange{}, false // a stream whose start tap did not see
	}
	switch m.Header.Get(stream.HeaderControl) {
	case "":
		if m.Reply == "" {
			return Exchange{}, false
		}
		if _, dup := p.pulls[m.Reply]; dup {
			return Exchange{}, false // delivered twice by overlapping subscriptions
		}
		if len(f.pulls) >= maxPullsPerStream {
			delete(p.pulls, f.pulls[0])
			f.pulls = f.pulls[1:]
		}
		f.pulls = append(f.pulls, m.Reply)
		p.pulls[m.Reply] = f
	case "cancel":
		p.end(f, "its reader cancelled it", true)
		return p.settle(f.ex, now)
	}
	// A ping is the reader asking the server whether the holder is still
	// there: nothing tap counts.
	return Exchange{}, false
}

// part takes the answer to a pull.
func (p *Pairer) part(f *flow, m *nats.Msg, now time.Time) (Exchange, bool) {
	delete(p.pulls, m.Subject)
	if i := slices.Index(f.pulls, m.Subject); i >= 0 {
		f.pulls = slices.Delete(f.pulls, i, i+1)
	}
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		p.end(f, "its sender is gone (no one subscribes to its stream)", false)
		return p.settle(f.ex, now)
	}
	n, err := strconv.Atoi(m.Header.Get(stream.HeaderPart))
	if err != nil || n != f.got+1 {
		p.end(f, fmt.Sprintf("part %q came where part %d was due", m.Header.Get(stream.HeaderPart), f.got+1), false)
		return p.settle(f.ex, now)
	}
	f.got = n
	f.side.Parts++
	if why := m.Header.Get(stream.HeaderError); why != "" {
		p.end(f, why, false)
		return p.settle(f.ex, now)
	}
	if len(m.Data) == 0 {
		p.end(f, "", false)
		return p.settle(f.ex, now)
	}
	f.side.Size += len(m.Data)
	if f.hash != nil {
		f.hash.Write(m.Data)
	}
	keepMax := p.maxBody
	if keepMax < 0 {
		keepMax = p.recordMaxStream
	}
	// Past what is kept, Size counts on alone: Truncated then says so.
	if room := keepMax - len(f.side.Body); room > 0 && len(f.side.Body) == f.side.Size-len(m.Data) {
		f.side.Body = append(f.side.Body, m.Data[:min(room, len(m.Data))]...)
	}
	return Exchange{}, false
}

// end stops following f. why is "" for a body that ended whole, else why
// it did not; soft marks a reason that does not break a request body all
// of whose announced length crossed (its reader stopped at the last byte
// without pulling the end).
func (p *Pairer) end(f *flow, why string, soft bool) {
	delete(p.streams, f.subject)
	for _, r := range f.pulls {
		delete(p.pulls, r)
	}
	f.pulls = nil
	ex := f.ex
	ex.flows = slices.DeleteFunc(ex.flows, func(g *flow) bool { return g == f })
	if f.hash != nil {
		f.side.SHA256 = hex.EncodeToString(f.hash.Sum(nil))
	}
	if why == "" || soft && f.length >= 0 && f.side.Size == f.length {
		return
	}
	if ex.StreamError == "" {
		ex.StreamError = "the streamed " + f.name + " body did not end: " + why
	}
}

// endAll stops following every stream of ex for the same reason.
func (p *Pairer) endAll(ex *Exchange, why string, soft bool) {
	for len(ex.flows) > 0 {
		p.end(ex.flows[0], why, soft)
	}
}

// settle hands on ex once it is over: its reply came and no body of it
// still streams.
func (p *Pairer) settle(ex *Exchange, now time.Time) (Exchange, bool) {
	if !ex.replied || len(ex.flows) > 0 {
		return Exchange{}, false
	}
	delete(p.pending, ex.Reply)
	ex.Latency = now.Sub(ex.Time)
	out := *ex
	out.flows = nil
	return out, true
}
