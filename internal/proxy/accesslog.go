package proxy

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// bufferedLog batches access log entries and writes them every interval
// or when the buffer fills, as nginx's `access_log ... buffer=` does: a
// busy gateway then makes one write per batch instead of one per request.
type bufferedLog struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newBufferedLog(w io.Writer, every time.Duration) *bufferedLog {
	b := &bufferedLog{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				b.flush()
				return
			case <-t.C:
				b.flush()
			}
		}
	}()
	return b
}

func (b *bufferedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

func (b *bufferedLog) flush() {
	b.mu.Lock()
	b.w.Flush()
	b.mu.Unlock()
}

// Close flushes what is left and stops the flusher.
func (b *bufferedLog) Close() {
	close(b.stop)
	<-b.done
}
