package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// pullTTL is how long after receiving a pull a source may still answer
// it: nats-server lets a worker answer what it received for two minutes
// (allow_responses), and the reader renews pulls after staleAfter.
const pullTTL = 60 * time.Second

// failWait bounds how long a source that failed waits for a pull to
// answer with the failure.
const failWait = 5 * time.Second

// ErrCancelled is a source's error once its reader sent cancel.
var ErrCancelled = errors.New("the reader cancelled the stream")

// Source holds a body and sends it in parts, one per pull.
type Source struct {
	mux     *Mux
	id      string
	subject string
	size    int

	// pulls queue the reply subjects of pulls not yet answered, with
	// when they came; more than the window of two readers is a reader
	// breaking the protocol, and is dropped.
	pulls     chan pull
	cancelled chan struct{}
	once      sync.Once
	part      int // the last part number sent
}

type pull struct {
	reply string
	at    time.Time
}

// NewSource starts a stream on m; Subject names it in the message that
// starts the body. Close it when done.
func (m *Mux) NewSource() (*Source, error) {
	s := &Source{mux: m, pulls: make(chan pull, 4*Window), cancelled: make(chan struct{}), size: PartSize(m.nc)}
	subj, err := m.addSource(s)
	if err != nil {
		return nil, fmt.Errorf("subscribing for stream pulls: %w", err)
	}
	s.subject = subj
	s.id = subj[strings.LastIndexByte(subj, '.')+1:]
	return s, nil
}

// Subject is the stream subject, for the Metro-Stream header.
func (s *Source) Subject() string { return s.subject }

// PartSize is the most bytes one Send may carry.
func (s *Source) PartSize() int { return s.size }

// Cancelled is closed when the reader cancels the stream.
func (s *Source) Cancelled() <-chan struct{} { return s.cancelled }

// Close drops the stream: later pulls find nothing to answer.
func (s *Source) Close() { s.mux.removeSource(s.id) }

func (s *Source) onMsg(m *nats.Msg) {
	switch m.Header.Get(HeaderControl) {
	case "":
	case controlCancel:
		s.once.Do(func() { close(s.cancelled) })
		return
	case controlPing:
		if m.Reply != "" {
			_ = s.mux.nc.PublishMsg(&nats.Msg{Subject: m.Reply, Header: nats.Header{HeaderControl: []string{controlPong}}})
		}
		return
	default: // one this version does not know
		return
	}
	if m.Reply == "" {
		return
	}
	select {
	case s.pulls <- pull{reply: m.Reply, at: time.Now()}:
	default:
	}
}

// Send sends p (at most PartSize bytes, at least one) as the next part,
// waiting for a pull until ctx ends or the reader cancels.
func (s *Source) Send(ctx context.Context, p []byte) error {
	if len(p) == 0 || len(p) > s.size {
		return fmt.Errorf("stream part of %d bytes, want 1 to %d", len(p), s.size)
	}
	return s.send(ctx, p, "")
}

// SendParts sends p in parts of PartSize and returns what it left: with
// all, nothing (the last part may be shorter); else less than a part, for
// the caller to send with what comes next.
func (s *Source) SendParts(ctx context.Context, p []byte, all bool) ([]byte, error) {
	for len(p) >= s.size || all && len(p) > 0 {
		n := min(len(p), s.size)
		if err := s.send(ctx, p[:n], ""); err != nil {
			return p, err
		}
		p = p[n:]
	}
	return p, nil
}

// End sends the empty part that completes the body.
func (s *Source) End(ctx context.Context) error { return s.send(ctx, nil, "") }

// Fail ends the stream broken, saying why; the reader will not take the
// body for complete.
func (s *Source) Fail(ctx context.Context, why string) error {
	if why == "" {
		why = "the sender failed"
	}
	return s.send(ctx, nil, why)
}

func (s *Source) send(ctx context.Context, p []byte, failure string) error {
	var tick *time.Ticker
	defer func() {
		if tick != nil {
			tick.Stop()
		}
	}()
	for {
		var pl pull
		select {
		case pl = <-s.pulls:
		default:
			if tick == nil {
				// A closed connection brings no more pulls; nats.go says
				// so only when asked.
				tick = time.NewTicker(pingAfter)
			}
			select {
			case pl = <-s.pulls:
			case <-s.cancelled:
				return ErrCancelled
			case <-ctx.Done():
				return fmt.Errorf("waiting for the reader to pull part %d: %w", s.part+1, context.Cause(ctx))
			case <-tick.C:
				if s.mux.nc.IsClosed() {
					return fmt.Errorf("waiting for the reader to pull part %d: %w", s.part+1, nats.ErrConnectionClosed)
				}
				continue
			}
		}
		if time.Since(pl.at) > pullTTL {
			continue // the server may refuse an answer so late; the reader has renewed it
		}
		s.part++
		h := nats.Header{HeaderPart: []string{strconv.Itoa(s.part)}}
		if failure != "" {
			h[HeaderError] = []string{failure}
		}
		if err := s.mux.nc.PublishMsg(&nats.Msg{Subject: pl.reply, Header: h, Data: p}); err != nil {
			return fmt.Errorf("sending part %d: %w", s.part, err)
		}
		return nil
	}
}

// SendFrom sends what r holds, part by part as it is read, then the end.
// When reading r fails it calls failed (if set) before ending the stream
// broken, and returns the read's error; an error of sending ends it early
// too (the reader cancelled, ctx ended).
func (s *Source) SendFrom(ctx context.Context, r io.Reader, failed func(error)) error {
	buf := make([]byte, s.size)
	for {
		n, err := ReadPart(r, buf)
		if n > 0 {
			if serr := s.Send(ctx, buf[:n]); serr != nil {
				return serr
			}
		}
		switch {
		case err == nil:
			continue
		case err == io.EOF:
			return s.End(ctx)
		}
		if failed != nil {
			failed(err) // which may end ctx: the reader must still be told
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), failWait)
		_ = s.Fail(fctx, "the body could not be read: "+err.Error())
		cancel()
		return err
	}
}

// Large reports whether a request body of length bytes (negative: not
// known) streams to a worker that reads streamed bodies: it may not fit
// one message, being over half of what one holds or of unknown length
// (PROTOCOL.md section 9).
func Large(nc *nats.Conn, length int64) bool {
	return length < 0 || length > nc.MaxPayload()/2
}

// firstBuffer is the most a first part's buffer starts at: it doubles as
// bytes arrive, so a client that announces a large body and sends little
// holds little.
const firstBuffer = 16 << 10

// FirstPart reads the first part of a body that may stream on nc: the
// part and the rest to stream, or the whole body and no rest when it ends
// within the part.
func FirstPart(nc *nats.Conn, r io.Reader) ([]byte, io.Reader, error) {
	size := PartSize(nc)
	buf := make([]byte, 0, min(firstBuffer, size))
	for {
		n, err := ReadPart(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return buf, nil, nil
		case err != nil:
			return nil, nil, err
		case len(buf) == size:
			return buf, r, nil
		}
		grown := make([]byte, len(buf), min(2*cap(buf), size))
		copy(grown, buf)
		buf = grown
	}
}

// ReadPart fills buf from r. Unlike io.ReadFull it returns io.EOF only
// for a body that ended where it should: net/http reports one cut short
// (a closed connection, a length not reached) as io.ErrUnexpectedEOF,
// which must not pass for the end.
//
// A read that fills buf and reports io.EOF with its last bytes (as
// net/http's bodies do) returns nil: the next call returns io.EOF.
func ReadPart(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF && n == len(buf) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
