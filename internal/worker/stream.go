package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/stream"
	"github.com/metropolis-dev/metro/internal/wire"
)

// readsStreams reports whether the caller of m reads a streamed reply: it
// speaks protocol version 3 or later (PROTOCOL.md section 9).
func readsStreams(m *nats.Msg) bool {
	v, err := strconv.Atoi(wire.Get(m.Header, wire.HeaderVersion))
	return err == nil && v >= 3
}

// streamedBody is the body of a request whose caller streams it: r.Body
// pulls its parts as the handler reads.
func (w *Worker) streamedBody(ctx context.Context, subj string, first []byte) (io.ReadCloser, error) {
	rd, err := stream.For(w.nc).NewReader(ctx, subj, first)
	if err != nil {
		return nil, fmt.Errorf("reading the streamed request body: %w", err)
	}
	return rd, nil
}

// bodyLength is the length a streamed body announced, or -1.
func bodyLength(h http.Header) int64 {
	n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// replyStream streams a handler's reply once it flushes, or once it has
// written more than half of what a message may hold: the first message
// answers the request and names the stream; the rest goes in parts, each
// sent when the caller pulls it, so a handler writing faster than its
// client reads blocks in Write.
type replyStream struct {
	w      *Worker
	m      *nats.Msg
	ctx    context.Context
	cancel context.CancelFunc // the handler's context
	src    *stream.Source     // nil until the reply streams
	err    error              // sticky: the stream broke
}

func (st *replyStream) setContext(ctx context.Context) {
	if st != nil {
		st.ctx = ctx
	}
}

func (st *replyStream) started() bool { return st != nil && st.src != nil }

// errReplyFailed is a write's error after the reply could not start.
var errReplyFailed = errors.New("the reply could not be sent")

func (st *replyStream) write(rw *responseWriter, p []byte) (int, error) {
	if st.err != nil {
		return 0, st.err
	}
	n := len(p)
	if st.src != nil && rw.body.Len() == 0 {
		// Whole parts go from the handler's buffer itself: the
		// connection copies them as they are sent.
		var err error
		if p, err = st.sendParts(p, false); err != nil {
			return n - len(p), err
		}
	}
	rw.body.Write(p)
	if st.src == nil && rw.body.Len() <= int(st.w.nc.MaxPayload())/2 {
		return n, nil
	}
	if err := st.send(rw, false); err != nil {
		return 0, err
	}
	return n, nil
}

// errNoStreams is a flush's error for a caller that reads every reply as
// one message: what was written leaves when the handler returns.
var errNoStreams = fmt.Errorf("the caller reads no streamed replies (protocol version 2 or older): %w", http.ErrNotSupported)

// FlushError sends what was written so far.
func (rw *responseWriter) FlushError() error {
	if rw.st == nil {
		return errNoStreams
	}
	if rw.st.err != nil {
		return rw.st.err
	}
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	return rw.st.send(rw, true)
}

// send starts the stream if it has not started, then sends the buffered
// bytes in parts: all of them when all is set, else whole parts only.
func (st *replyStream) send(rw *responseWriter, all bool) error {
	if st.src == nil {
		if err := st.start(rw); err != nil {
			st.err = err
			return err
		}
	}
	rest, err := st.sendParts(rw.body.Bytes(), all)
	rw.body.Next(rw.body.Len() - len(rest))
	if rw.body.Len() == 0 {
		rw.body.Reset() // reuse the buffer from its start
	}
	return err
}

// sendParts sends p's whole parts (all of p when all is set) and returns
// what is left; an error breaks the stream for good.
func (st *replyStream) sendParts(p []byte, all bool) ([]byte, error) {
	rest, err := st.src.SendParts(st.ctx, p, all)
	if err != nil {
		st.err = fmt.Errorf("streaming the reply: %w", err)
		return rest, st.err
	}
	return rest, nil
}

// start answers the request with the status, the headers and the first
// part, naming the stream the rest will come on.
func (st *replyStream) start(rw *responseWriter) error {
	h, ok := st.w.replyHeader(st.m, rw)
	if !ok {
		return errReplyFailed
	}
	src, err := stream.For(st.w.nc).NewSource()
	if err != nil {
		st.w.replyProblem(st.m, http.StatusInternalServerError, err.Error(), st.m.Header.Get(wire.HeaderRequestID))
		return fmt.Errorf("%w: %w", errReplyFailed, err)
	}
	h[stream.HeaderStream] = []string{src.Subject()}
	first := rw.body.Next(src.PartSize())
	if err := st.w.respond(st.m, &nats.Msg{Header: h, Data: first}); err != nil {
		src.Close()
		return fmt.Errorf("%w: %w", errReplyFailed, err)
	}
	st.src = src
	// The caller's cancel (its client went away) ends the handler's
	// context; the watch ends with it.
	go func() {
		select {
		case <-src.Cancelled():
			st.cancel()
		case <-st.ctx.Done():
		}
	}()
	return nil
}

// finish ends a streamed reply once the handler returned: the rest of the
// body and the end, or, when the handler panicked, a broken end so the
// client cannot take a part for the whole. It reports whether the reply
// ended whole.
func (st *replyStream) finish(rw *responseWriter, ok bool) bool {
	defer st.src.Close()
	if !ok {
		_ = st.src.Fail(st.ctx, "the handler panicked")
		return false
	}
	if st.err == nil {
		st.err = st.send(rw, true)
	}
	if st.err == nil {
		st.err = st.src.End(st.ctx)
	}
	if st.err != nil {
		if st.ctx.Err() == nil {
			st.w.log.Warn("streamed reply ended early", "subject", st.m.Subject, "err", st.err)
		}
		return false
	}
	return true
}
