package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/stream"
)

// Defaults of the gateway's memory limits, sized for the memory limit
// that metro deploy gives the gateway: see internal/config/memory.go.
const (
	DefaultMaxInFlight   = config.DefaultMaxInFlight
	DefaultMaxBodyMemory = config.DefaultMaxBodyMemory
)

// firstBodyBuffer is the most a body buffer starts at: it then doubles as
// bytes arrive, so a client that announces a large body and sends little
// holds little. A body of this size or less is read into one buffer.
const firstBodyBuffer = 16 << 10

// limits hold what bounds the gateway's memory: the requests it serves at
// once, and the bytes of request bodies it holds.
type limits struct {
	maxInFlight int64 // 0: none
	inFlight    atomic.Int64
	bodies      budget
	shedFlight  prometheus.Counter
	shedBodies  prometheus.Counter
}

func newLimits(cfg Config, reg prometheus.Registerer) *limits {
	l := &limits{maxInFlight: int64(orDefault(cfg.MaxInFlight, DefaultMaxInFlight))}
	l.bodies.max = int64(orDefault(cfg.MaxBodyMemory, DefaultMaxBodyMemory))
	shed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "metro", Subsystem: "gateway", Name: "shed_total",
		Help: "Requests answered 503 at once because a limit of the gateway was reached, by limit.",
	}, []string{"limit"})
	l.shedFlight = shed.WithLabelValues("max_in_flight")
	l.shedBodies = shed.WithLabelValues("max_body_memory")
	bodyMemory := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "metro", Subsystem: "gateway", Name: "body_memory_bytes",
		Help: "Bytes of request body buffers held now (limit: gateway.max_body_memory).",
	}, func() float64 { return float64(l.bodies.used.Load()) })
	reg.MustRegister(shed, bodyMemory)
	return l
}

// orDefault reads a limit of Config: 0 takes the default, negative none.
func orDefault[T int | int64](v, def T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// enter counts a request in, or reports false when it would exceed
// max_in_flight; a true must be matched by leave.
func (l *limits) enter() bool {
	n := l.inFlight.Add(1)
	if l.maxInFlight > 0 && n > l.maxInFlight {
		l.inFlight.Add(-1)
		l.shedFlight.Inc()
		return false
	}
	return true
}

func (l *limits) leave() { l.inFlight.Add(-1) }

// budget is a total of bytes shared by all requests; max 0 is unbounded.
type budget struct {
	max  int64
	used atomic.Int64
}

func (b *budget) take(n int64) bool {
	if b.used.Add(n) > b.max && b.max > 0 {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *budget) give(n int64) { b.used.Add(-n) }

// errBodyMemory is a body that would take the gateway past max_body_memory.
var errBodyMemory = errors.New("the gateway holds as many bytes of request bodies as its limit allows (gateway.max_body_memory)")

// readBody reads a request body for its message. To a route whose worker
// reads streamed bodies (PROTOCOL.md section 9), a body over half of what a
// message holds, or of unknown length, streams: readBody reads its first
// part and returns the rest to send as the worker pulls it. Otherwise it
// reads the whole body, which the message carries in one piece. Buffers
// grow as the bytes arrive and are charged to the body budget; *held is
// what the caller must give back when the request is done.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request, held *int64, streams bool) ([]byte, io.Reader, int, error) {
	if streams && stream.Large(g.nc, r.ContentLength) && r.Body != nil && r.Body != http.NoBody {
		return g.readFirstPart(w, r, held)
	}
	body, status, err := g.readWhole(w, r, held, min(g.maxBody, g.nc.MaxPayload()))
	return body, nil, status, err
}

// readFirstPart reads the first part of a body that may stream: the whole
// body, with no rest, when it ends within the part.
func (g *Gateway) readFirstPart(w http.ResponseWriter, r *http.Request, held *int64) ([]byte, io.Reader, int, error) {
	body, err := bodyReader(w, r, g.maxBody)
	if err != nil {
		return nil, nil, http.StatusRequestEntityTooLarge, err
	}
	// This part, and the one the upload reads into.
	size := stream.PartSize(g.nc)
	if err := g.holdBody(w, held, 2*int64(size)); err != nil {
		return nil, nil, http.StatusServiceUnavailable, err
	}
	first, rest, err := stream.FirstPart(g.nc, body)
	if err != nil {
		status, err := bodyFailure(err, g.maxBody)
		return nil, nil, status, err
	}
	return first, rest, 0, nil
}

// readWhole reads a body of at most limit bytes whole.
func (g *Gateway) readWhole(w http.ResponseWriter, r *http.Request, held *int64, limit int64) ([]byte, int, error) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil, 0, nil
	}
	body, err := bodyReader(w, r, limit)
	if err != nil {
		return nil, http.StatusRequestEntityTooLarge, err
	}
	size := r.ContentLength // the buffer's final size
	if size < 0 {
		size = limit + 1 // the byte that makes the bounded reader fail
	}
	var buf []byte
	n := 0
	for {
		grown := min(max(2*int64(len(buf)), firstBodyBuffer), size)
		if err := g.holdBody(w, held, grown); err != nil {
			return nil, http.StatusServiceUnavailable, err
		}
		nb := make([]byte, grown)
		copy(nb, buf[:n])
		buf = nb
		m, err := stream.ReadPart(body, buf[n:])
		n += m
		switch {
		case err == nil && int64(n) < size:
			continue
		case err == nil && r.ContentLength >= 0:
			return buf, 0, nil
		case err == io.EOF && r.ContentLength < 0:
			return buf[:n], 0, nil
		}
		if err == nil {
			err = io.ErrUnexpectedEOF // unreachable: an unknown length ends in an error
		}
		status, err := bodyFailure(err, limit)
		return nil, status, err
	}
}

// bodyReader is r's body, bounded by limit when its length is unknown:
// one byte past the limit makes MaxBytesReader fail, and that closes the
// connection rather than read on. An announced length over limit is an
// error at once.
func bodyReader(w http.ResponseWriter, r *http.Request, limit int64) (io.Reader, error) {
	switch {
	case r.ContentLength > limit:
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errBodyTooLarge, r.ContentLength, limit)
	case r.ContentLength < 0:
		return http.MaxBytesReader(w, r.Body, limit), nil
	}
	return r.Body, nil
}

// holdBody raises what the request holds of the body budget to n bytes,
// or fails when the budget has no room for it.
func (g *Gateway) holdBody(w http.ResponseWriter, held *int64, n int64) error {
	if !g.limits.bodies.take(n - *held) {
		g.limits.shedBodies.Inc()
		// The rest of the body is not wanted: without this the server
		// would read it to keep the connection.
		w.Header().Set("Connection", "close")
		return errBodyMemory
	}
	*held = n
	return nil
}

// bodyFailure is the status and error of a body whose read failed with
// err: 413 past limit, else bodyReadStatus's. A body cut short fails with
// io.ErrUnexpectedEOF: only io.EOF ends a body whole (stream.ReadPart).
func bodyFailure(err error, limit int64) (int, error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, fmt.Errorf("%w: limit %d", errBodyTooLarge, limit)
	}
	return bodyReadStatus(err), fmt.Errorf("reading request body: %w", err)
}
