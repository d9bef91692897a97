package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Timings of a reader waiting for a part.
const (
	// pingAfter is how long a reader waits for a part before it asks the
	// server whether the source is still there.
	pingAfter = time.Second
	// staleAfter is how long a window of pulls waits before the reader
	// sends a fresh one (the source drops pulls older than pullTTL).
	staleAfter = 30 * time.Second
	// silentAfter is how long a ping may go unanswered before the reader
	// takes its source for dead. The server answers a ping at once when
	// no one subscribes to the stream subject, but anyone else who does
	// (metro tap) keeps it from doing so.
	silentAfter = 5 * time.Second
)

// Reader pulls the parts of a stream in order. It is an io.ReadCloser;
// Next hands out whole parts instead. A Reader is used by one goroutine.
type Reader struct {
	mux     *Mux
	ctx     context.Context
	id      string
	base    string // reply subjects of its pulls: base + n
	subject string // the source's

	parts    chan *nats.Msg
	seq      int // pulls sent: the last reply token used
	inflight int // pulls not yet answered
	got      int // the last part number received
	renewed  time.Time
	pinged   time.Time   // the first ping not answered yet
	ponged   atomic.Bool // a pong came since the last look
	buf      []byte
	done     atomic.Bool // read to its end
	err      error       // sticky: io.EOF at the end
	once     sync.Once
	closed   chan struct{}
	timer    *time.Timer
	// Parts counts the parts read, the first message's included.
	Parts int
}

// NewReader reads the stream on subject, whose first part (the payload
// of the message that named it) is first. ctx bounds every wait: the
// exchange's deadline. Pulls start with the first read.
func (m *Mux) NewReader(ctx context.Context, subject string, first []byte) (*Reader, error) {
	r := &Reader{mux: m, ctx: ctx, subject: subject, buf: first, parts: make(chan *nats.Msg, 4*Window), closed: make(chan struct{}), Parts: 1}
	base, err := m.addReader(r)
	if err != nil {
		return nil, fmt.Errorf("subscribing for stream parts: %w", err)
	}
	r.base = base
	r.id = base[len(m.readBase) : len(base)-1]
	return r, nil
}

func (r *Reader) onMsg(m *nats.Msg) {
	if m.Header.Get(HeaderControl) == controlPong {
		// Noted here rather than queued, so that what waits in parts is
		// always something Next returns or fails on (see Ready).
		r.ponged.Store(true)
		return
	}
	select {
	case r.parts <- m:
	default:
		// More parts than pulls: the source broke the protocol. Taken
		// for a lost part when the gap shows.
	}
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		part, err := r.Next()
		if err != nil {
			return 0, err
		}
		r.buf = part
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// Ready reports whether Next would return at once: a part (or the end,
// or a failure) has arrived.
func (r *Reader) Ready() bool { return len(r.buf) > 0 || len(r.parts) > 0 }

// Next returns the next part's bytes (the first message's first), io.EOF
// at the end, or an error wrapping ErrBroken.
func (r *Reader) Next() ([]byte, error) {
	if r.err != nil && len(r.buf) == 0 {
		return nil, r.err
	}
	r.fill() // the first call starts the window, each later one refills it
	if len(r.buf) > 0 {
		b := r.buf
		r.buf = nil
		return b, nil
	}
	for {
		if r.timer == nil {
			r.timer = time.NewTimer(pingAfter)
		} else {
			r.timer.Reset(pingAfter)
		}
		select {
		case m := <-r.parts:
			b, err := r.take(m)
			if err != nil {
				r.fail(err)
				return nil, r.err
			}
			r.fill() // the part is the caller's now: pull another
			return b, nil
		case <-r.timer.C:
			// A source that died cannot say so: the server can, answering
			// a message that no one subscribes to, and a live one answers.
			if r.ponged.Swap(false) {
				r.pinged = time.Time{} // the source lives
			}
			if !r.pinged.IsZero() && time.Since(r.pinged) > silentAfter {
				r.fail(fmt.Errorf("%w: the sender has not answered for %v", ErrBroken, silentAfter))
				break
			}
			if r.pinged.IsZero() {
				r.pinged = time.Now()
			}
			r.seq++
			r.publish("p"+strconv.Itoa(r.seq), controlPing)
			if time.Since(r.renewed) >= staleAfter {
				r.inflight = 0 // the source drops pulls this old
				r.fill()
			}
		case <-r.ctx.Done():
			r.fail(fmt.Errorf("%w: waiting for part %d: %w", ErrBroken, r.got+1, context.Cause(r.ctx)))
		case <-r.closed:
			r.fail(ErrClosed)
		}
		if r.err != nil {
			return nil, r.err
		}
	}
}

// fill keeps a window of pulls in flight, each with a reply subject of its
// own (nats-server counts the answers to each).
func (r *Reader) fill() {
	if r.inflight >= Window {
		return
	}
	for ; r.inflight < Window; r.inflight++ {
		r.seq++
		r.publish(strconv.Itoa(r.seq), "")
	}
	r.renewed = time.Now()
}

func (r *Reader) publish(reply, control string) {
	m := &nats.Msg{Subject: r.subject, Reply: r.base + reply}
	if control != "" {
		m.Header = nats.Header{HeaderControl: []string{control}}
	}
	if err := r.mux.nc.PublishMsg(m); err != nil {
		r.fail(fmt.Errorf("%w: sending a pull: %w", ErrBroken, err))
	}
}

// take reads one part of the stream (or the server's answer for a source
// that is gone): its bytes, or io.EOF at the end.
func (r *Reader) take(m *nats.Msg) ([]byte, error) {
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		return nil, fmt.Errorf("%w: the sender is gone (no one subscribes to its stream)", ErrBroken)
	}
	if why := m.Header.Get(HeaderError); why != "" {
		return nil, fmt.Errorf("%w: %s", ErrBroken, why)
	}
	r.pinged = time.Time{} // a part shows the source lives
	n, err := strconv.Atoi(m.Header.Get(HeaderPart))
	if err != nil || n != r.got+1 {
		return nil, fmt.Errorf("%w: got part %q, want %d: a part was lost", ErrBroken, m.Header.Get(HeaderPart), r.got+1)
	}
	r.got = n
	r.Parts++
	r.inflight = max(r.inflight-1, 0)
	if len(m.Data) == 0 {
		r.done.Store(true)
		return nil, io.EOF
	}
	return m.Data, nil
}

func (r *Reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// ErrClosed is a read's error once the Reader was closed.
var ErrClosed = errors.New("read on a closed stream")

// Close stops reading: a stream not read to its end is cancelled, so its
// source stops. It may be called while another goroutine reads, and
// returns nil.
func (r *Reader) Close() error {
	r.once.Do(func() {
		close(r.closed)
		if !r.done.Load() {
			// Published here, not through publish, which records errors
			// for the reading goroutine.
			_ = r.mux.nc.PublishMsg(&nats.Msg{Subject: r.subject, Header: nats.Header{HeaderControl: []string{controlCancel}}})
		}
		r.mux.removeReader(r.id)
	})
	return nil
}
