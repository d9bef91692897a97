package proxy

import (
	"bytes"
	"io"
	"sync"
	"time"
)

// Batching of the access log, as nginx's `access_log ... buffer=`: a busy
// gateway makes one write per batch instead of one per request.
const (
	logBatchSize  = 64 << 10
	logBatchEvery = 100 * time.Millisecond
)

// LogWriter is the one writer through which a gateway process's logs
// reach their output. The access log's entries are batched; anything
// else written (the gateway's own log) goes out at once, after the batch
// before it. Batches end at line ends, and a write is never split, so
// the output is whole lines whatever the load: two writers on one output
// would let the own log land between the halves of a batch that a full
// buffer cut mid-line.
type LogWriter struct {
	mu    sync.Mutex
	out   io.Writer
	buf   []byte
	timer *time.Timer // flushes buf; armed while buf holds entries
}

// NewLogWriter returns a LogWriter on out (stderr, in metro gateway).
func NewLogWriter(out io.Writer) *LogWriter {
	return &LogWriter{out: out, buf: make([]byte, 0, logBatchSize)}
}

// Write writes p at once, after what is batched: for logs that must not
// wait, and whose records each come as one write (as slog handlers do).
func (l *LogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	return l.out.Write(p)
}

// batch adds p, one or more whole entries, to the batch. A batch that p
// would overflow goes out first; an entry larger than a batch goes out
// alone.
func (l *LogWriter) batch(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf)+len(p) > cap(l.buf) {
		l.flushLocked()
		if len(p) > cap(l.buf) {
			return l.out.Write(p)
		}
	}
	l.buf = append(l.buf, p...)
	if l.timer == nil {
		// A timer rather than a flushing goroutine: nothing runs while
		// there is nothing to write, and nothing is left to stop.
		l.timer = time.AfterFunc(logBatchEvery, l.Flush)
	}
	return len(p), nil
}

// Flush writes what is batched.
func (l *LogWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
}

func (l *LogWriter) flushLocked() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if len(l.buf) == 0 {
		return
	}
	// An output that fails has nowhere to report it; the entries are
	// dropped rather than kept to grow without bound.
	l.out.Write(l.buf) //nolint:errcheck
	l.buf = l.buf[:0]
}

// batchWriter is the access log's side of a LogWriter. slog's handlers
// write each record with one Write, so every p is whole lines.
type batchWriter struct{ l *LogWriter }

func (b batchWriter) Write(p []byte) (int, error) {
	if len(p) > 0 && !bytes.HasSuffix(p, []byte("\n")) {
		// Not a whole entry: never hold half a line in a batch.
		return b.l.Write(p)
	}
	return b.l.batch(p)
}
