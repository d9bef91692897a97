package tap

import (
	"container/heap"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/subject"
	"github.com/metropolis-dev/metro/internal/wire"
)

// DefaultWait is how long a request without Metro-Deadline (a plain NATS
// request, not from the gateway) is awaited: the gateway's default timeout.
const DefaultWait = 30 * time.Second

// maxWait caps a request's wait whatever its Metro-Deadline says, so a
// bogus header cannot keep a request pending for ever.
const maxWait = time.Hour

// deadlineGrace absorbs clock skew between the gateway, which sets
// Metro-Deadline, and the machine tap runs on.
const deadlineGrace = 500 * time.Millisecond

// ErrUnserved explains a timeout on a subject no running service
// announces. Tap cannot observe "no responders" itself: nats-server sends
// that answer to the requester alone, and tap's own subscription is
// interest in the subject, so while tap listens the server has someone to
// deliver to and the requester waits out its deadline instead.
var ErrUnserved = errors.New("no running service announces this subject (without tap listening, NATS would have answered no responders)")

// MaxPending bounds the requests awaiting a reply. Past it new requests are
// not tracked (counted as dropped) rather than letting memory grow with a
// flood of requests nobody answers.
const MaxPending = 1 << 16

const inboxPrefix = "_INBOX."

// Pairer matches requests with replies. It is not safe for concurrent use:
// one intake goroutine owns it, which keeps the hot path free of locks.
type Pairer struct {
	prefix string
	// metroOnly: only messages on metro subjects are requests (tapping
	// everything must not list NATS's own traffic); otherwise every message
	// on a tapped subject is.
	metroOnly bool
	workers   *workerIndex

	seq     uint64
	maxBody int                  // body bytes kept; MaxBody, or -1 for all
	limit   int                  // MaxPending; lower in tests
	pending map[string]*Exchange // by reply subject, until every stream of it ends
	due     deadlines
	dropped uint64

	// recordMaxStream is how much of a streamed body is kept when bodies
	// are kept whole (maxBody < 0).
	recordMaxStream int
	streams         map[string]*flow // by stream subject
	pulls           map[string]*flow // by the reply subject of a pull
}

// NewPairer returns a Pairer for subjects under prefix. metroOnly makes it
// ignore messages whose subject is not a metro request subject.
func NewPairer(prefix string, metroOnly bool) *Pairer {
	return &Pairer{
		prefix:    prefix,
		metroOnly: metroOnly,
		workers:   newWorkerIndex(),
		maxBody:   MaxBody,
		limit:     MaxPending,
		pending:   make(map[string]*Exchange),

		recordMaxStream: DefaultRecordMaxStream,
		streams:         make(map[string]*flow),
		pulls:           make(map[string]*flow),
	}
}

// Pending is how many requests await their reply.
func (p *Pairer) Pending() int { return len(p.pending) }

// Dropped is how many requests were not tracked because MaxPending were.
func (p *Pairer) Dropped() uint64 { return p.dropped }

// Observe takes one message seen at now. It returns an exchange when m
// starts or completes one: a request awaiting its reply (Pending), the
// reply to one (the same Seq, finished), or a publish that expects none.
func (p *Pairer) Observe(m *nats.Msg, now time.Time) (Exchange, bool) {
	// A reply is recognised by its subject being a pending reply subject,
	// which also pairs replies to inboxes outside _INBOX when they are tapped.
	if ex, ok := p.pending[m.Subject]; ok {
		if ex.replied {
			// The reply inbox gets one message; a streamed body's parts
			// come on the reply subjects of the pulls.
			return Exchange{}, false
		}
		p.finish(ex, m, now)
		return p.settle(ex, now)
	}
	if f, ok := p.pulls[m.Subject]; ok {
		return p.part(f, m, now)
	}
	if strings.HasPrefix(m.Subject, streamRoot) {
		return p.streamMessage(m, now)
	}
	if strings.HasPrefix(m.Subject, inboxPrefix) {
		// A reply to a request tap did not see (or one already paired): an
		// inbox message is never a request.
		return Exchange{}, false
	}
	if p.metroOnly && strings.HasPrefix(m.Subject, "$") {
		return Exchange{}, false
	}
	ex, ok := p.request(m, now)
	if !ok {
		return Exchange{}, false
	}
	if m.Reply == "" {
		ex.Outcome = Published
		return *ex, true
	}
	if _, dup := p.pending[m.Reply]; dup {
		// Overlapping tapped subjects deliver the same request twice.
		return Exchange{}, false
	}
	if len(p.pending) >= p.limit {
		p.dropped++
		return Exchange{}, false
	}
	ex.Reply = m.Reply
	deadline, ok := wire.Deadline(m.Header)
	if !ok {
		deadline = now.Add(DefaultWait)
	}
	if limit := now.Add(maxWait); deadline.After(limit) {
		deadline = limit
	}
	ex.Deadline = deadline.Add(deadlineGrace)
	p.pending[m.Reply] = ex
	p.compact()
	heap.Push(&p.due, due{at: ex.Deadline, reply: m.Reply, seq: ex.Seq})
	if subj := wire.Get(m.Header, wire.HeaderStream); subj != "" {
		length, err := strconv.Atoi(wire.Get(m.Header, "Content-Length"))
		if err != nil || length < 0 {
			length = -1
		}
		p.follow(ex, &ex.Request, "request", subj, m.Data, length)
	}
	out := *ex
	out.flows = nil
	return out, true
}

// compact drops the heap entries of answered requests once they outnumber
// the pending ones: at thousands of requests a second, each answered in
// milliseconds but due only after the 30 s default, they would otherwise
// pile up for the whole of that wait.
func (p *Pairer) compact() {
	if len(p.due) < 1024 || len(p.due) < 4*len(p.pending) {
		return
	}
	live := p.due[:0]
	for _, d := range p.due {
		if ex, ok := p.pending[d.reply]; ok && ex.Seq == d.seq {
			live = append(live, d)
		}
	}
	clear(p.due[len(live):])
	p.due = live
	heap.Init(&p.due)
}

func (p *Pairer) request(m *nats.Msg, now time.Time) (*Exchange, bool) {
	ex := &Exchange{Time: now, Subject: m.Subject}
	method, segs, err := subject.Parse(p.prefix, m.Subject)
	switch {
	case err == nil:
		ex.Method, ex.Path = method, subject.EscapePath(segs)
	case p.metroOnly:
		return nil, false
	default:
		ex.Method = wire.Get(m.Header, wire.HeaderMethod)
		ex.Path = wire.Get(m.Header, wire.HeaderPath)
	}
	p.seq++
	ex.Seq = p.seq
	ex.Query = wire.Get(m.Header, wire.HeaderQuery)
	ex.RequestID = wire.Get(m.Header, wire.HeaderRequestID)
	ex.Worker, ex.Route = p.workers.lookup(m.Subject)
	ex.Request = keep(m, p.maxBody)
	return ex, true
}

func (p *Pairer) finish(ex *Exchange, m *nats.Msg, now time.Time) {
	ex.replied = true
	ex.Latency = now.Sub(ex.Time)
	ex.FirstPart = ex.Latency
	ex.Response = keep(m, p.maxBody)
	subj := wire.Get(m.Header, wire.HeaderStream)
	if subj == "" {
		// The exchange is over: a request body still streaming will not
		// be read further.
		p.endAll(ex, "the reply came before it was read to its end", true)
	}
	// nats-server answers a request nobody is subscribed to with an empty
	// message whose header line is "NATS/1.0 503"; nats.go reads that
	// inline status into the Status header.
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		ex.Outcome = NoResponders
		return
	}
	if subj != "" {
		p.follow(ex, &ex.Response, "reply", subj, m.Data, -1)
	}
	ex.Outcome = OK
	rep, err := wire.ReadReply(m, "", nil)
	switch {
	case errors.Is(err, wire.ErrBadReply):
		ex.Status = 502 // what the gateway answers for it (PROTOCOL.md section 4)
		ex.Error = err.Error()
	default:
		ex.Status = rep.Status
		ex.Error = rep.ServiceError
	}
}

// Expire finishes, as timed out, every pending request whose deadline is
// past at now, in deadline order.
func (p *Pairer) Expire(now time.Time, emit func(Exchange)) {
	for len(p.due) > 0 && !p.due[0].at.After(now) {
		d := heap.Pop(&p.due).(due)
		ex, ok := p.pending[d.reply]
		if !ok || ex.Seq != d.seq {
			continue // answered already; the heap entry is stale
		}
		delete(p.pending, d.reply)
		ex.Latency = now.Sub(ex.Time)
		if ex.replied {
			// The reply came; a body of it was still streaming.
			p.endAll(ex, "it did not end before the deadline", false)
		} else {
			p.endAll(ex, "no reply came", true)
			ex.Outcome = Timeout
			if p.workers.unserved(ex.Subject) {
				ex.Error = ErrUnserved.Error()
			}
		}
		out := *ex
		out.flows = nil
		emit(out)
	}
}

// keep copies what the detail view needs (max bytes of the body; all of
// it when max < 0): nats.go hands each message its own buffers, but
// keeping a slice of a large payload would pin all of it.
func keep(m *nats.Msg, max int) Message {
	msg := Message{Size: len(m.Data)}
	if len(m.Header) > 0 {
		msg.Header = m.Header
	}
	if len(m.Data) > 0 {
		n := len(m.Data)
		if max >= 0 {
			n = min(n, max)
		}
		msg.Body = append([]byte(nil), m.Data[:n]...)
	}
	return msg
}

// due is a pending request's deadline; the heap may hold entries of
// requests already answered, skipped when they surface.
type due struct {
	at    time.Time
	reply string
	seq   uint64
}

type deadlines []due

func (d deadlines) Len() int { return len(d) }
func (d deadlines) Less(i, j int) bool {
	// Ties go by arrival, so requests with one deadline time out in order.
	if d[i].at.Equal(d[j].at) {
		return d[i].seq < d[j].seq
	}
	return d[i].at.Before(d[j].at)
}
func (d deadlines) Swap(i, j int) { d[i], d[j] = d[j], d[i] }
func (d *deadlines) Push(x any)   { *d = append(*d, x.(due)) }
func (d *deadlines) Pop() any {
	old := *d
	x := old[len(old)-1]
	*d = old[:len(old)-1]
	return x
}
