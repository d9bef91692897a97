// Package blob is what the large-transfer scenario serves: a download, an
// upload and a streamed reply, the same bytes whether the backend serves
// them over HTTP or the worker over NATS, so that the scenario measures the
// hop in front and not the handler. Bodies are generated, never read from
// disk: a fixed pseudo-random block repeated, which nothing on the way can
// compress and a client can check cheaply.
package blob

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Size is the default length of a download and of an upload: 100 MiB.
const Size = 100 << 20

// BlockSize is the length of Block, the unit the bodies repeat.
const BlockSize = 1 << 20

// Block is the 1 MiB every body repeats: the same on every run and in
// every process, from a fixed seed.
var Block = func() []byte {
	b := make([]byte, BlockSize)
	r := rand.NewChaCha8([32]byte{'m', 'e', 't', 'r', 'o', ' ', 'b', 'l', 'o', 'b'})
	_, _ = r.Read(b)
	return b
}()

// Routes of the scenario: the backend serves them, the worker registers
// them.
const (
	Path       = "/blob"
	StreamPath = "/blob/stream"
	Download   = "GET " + Path
	Upload     = "POST " + Path
	Stream     = "GET " + StreamPath
)

// The streamed reply: FirstBytes written and flushed at once, then, after
// StreamPause (the handler still computing), StreamRest more bytes. Its
// time to first byte is thus what a hop adds to forwarding a flushed
// write; a hop that buffers it shows up as StreamPause or more.
const (
	FirstBytes  = 1 << 10
	StreamRest  = 64 << 10
	StreamPause = 20 * time.Millisecond
)

// ServeDownload answers Size bytes (or ?bytes=N) of Block repeated, with
// its Content-Length.
func ServeDownload(w http.ResponseWriter, r *http.Request) {
	n := int64(Size)
	if q := r.URL.Query().Get("bytes"); q != "" {
		v, err := strconv.ParseInt(q, 10, 64)
		if err != nil || v < 0 {
			http.Error(w, "bytes: want a length in bytes", http.StatusBadRequest)
			return
		}
		n = v
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/octet-stream"}
	h["Content-Length"] = []string{strconv.FormatInt(n, 10)}
	_, _ = io.Copy(w, NewReader(n))
}

// ServeUpload reads the body to its end, keeping none of it, and answers
// its length.
func ServeUpload(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		http.Error(w, fmt.Sprintf("reading the body after %d bytes: %v", n, err), http.StatusBadRequest)
		return
	}
	w.Header()["Content-Type"] = []string{"text/plain; charset=utf-8"}
	_, _ = io.WriteString(w, strconv.FormatInt(n, 10))
}

// ServeStream writes FirstBytes and flushes them, waits StreamPause, then
// writes StreamRest more. X-Accel-Buffering tells nginx to pass the reply
// on as it comes, as a streaming handler behind nginx must.
func ServeStream(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = []string{"application/octet-stream"}
	h["X-Accel-Buffering"] = []string{"no"}
	if _, err := w.Write(Block[:FirstBytes]); err != nil {
		return
	}
	if err := http.NewResponseController(w).Flush(); err != nil {
		return
	}
	t := time.NewTimer(StreamPause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
		return
	}
	_, _ = w.Write(Block[FirstBytes : FirstBytes+StreamRest])
}

// Handler serves the three routes on one handler, for the HTTP backend.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(Download, ServeDownload)
	mux.HandleFunc(Upload, ServeUpload)
	mux.HandleFunc(Stream, ServeStream)
	return mux
}

// Reader yields the first n bytes of Block repeated.
type Reader struct {
	off, n int64
}

// NewReader returns a Reader of n bytes.
func NewReader(n int64) *Reader { return &Reader{n: n} }

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	i := r.off % BlockSize
	m := copy(p, Block[i:min(int64(BlockSize), i+r.n-r.off)])
	r.off += int64(m)
	return m, nil
}

// WriteTo implements io.WriterTo, so io.Copy writes whole blocks rather
// than its 32 KiB buffer at a time.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for r.off < r.n {
		i := r.off % BlockSize
		m, err := w.Write(Block[i:min(int64(BlockSize), i+r.n-r.off)])
		r.off += int64(m)
		total += int64(m)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Checker is an io.Writer that compares what is written with Block
// repeated: a body that a hop corrupted, reordered or cut is told from
// the real one without holding it.
type Checker struct {
	N   int64 // bytes checked so far
	bad int64 // offset of the first wrong byte, -1 while none
}

// NewChecker returns a Checker at offset 0.
func NewChecker() *Checker { return &Checker{bad: -1} }

// Write implements io.Writer; it never fails, Err tells.
func (c *Checker) Write(p []byte) (int, error) {
	for q := p; len(q) > 0; {
		i := c.N % BlockSize
		want := Block[i:min(int64(BlockSize), i+int64(len(q)))]
		if c.bad < 0 && !bytes.Equal(q[:len(want)], want) {
			for j := range want {
				if q[j] != want[j] {
					c.bad = c.N + int64(j)
					break
				}
			}
		}
		c.N += int64(len(want))
		q = q[len(want):]
	}
	return len(p), nil
}

// Err reports the first wrong byte, or a length other than want.
func (c *Checker) Err(want int64) error {
	if c.bad >= 0 {
		return fmt.Errorf("body differs from the blob at byte %d", c.bad)
	}
	if c.N != want {
		return fmt.Errorf("body of %d bytes, want %d", c.N, want)
	}
	return nil
}
