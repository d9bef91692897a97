package proxy

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/metropolis-dev/metro/internal/wire"
)

// Request framing (RFC 9112 section 6). A message with both
// Transfer-Encoding and Content-Length, or a Transfer-Encoding in HTTP/1.0,
// or conflicting Content-Lengths, is one whose end two HTTP parsers may
// place differently: when metro sits behind another proxy, the bytes one
// of them takes for the rest of a body the other takes for a new request
// (request smuggling). RFC 9112 section 6.1 says to treat such framing as
// faulty and to close the connection after it.
//
// net/http cannot: for Transfer-Encoding with Content-Length it deletes
// Content-Length before any handler runs and keeps the connection, so a
// request pipelined behind the message is served. So the gateway's
// listener reads each connection through a framingConn, which follows the
// message boundaries exactly as net/http will (the header block, then a
// Content-Length body or chunks and trailers) and checks every header
// block before net/http sees it. A block with faulty framing is replaced
// by a request for framingPath, after which the connection yields nothing:
// the handler answers that request with 400 and closes, and nothing that
// followed on the connection is served.

// framingPath is the request a faulty header block is replaced with. A
// client may ask for it too; on a connection without faulty framing it is
// routed like any other path.
const framingPath = "/.metro/faulty-framing"

var framingRequest = []byte("GET " + framingPath + " HTTP/1.1\r\nHost: metro\r\nConnection: close\r\n\r\n")

type framingKey struct{}

// framingListener wraps each accepted connection in a framingConn.
type framingListener struct {
	net.Listener
	maxHeader int // the longest header block net/http may accept
}

func (l *framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c, maxHeader: l.maxHeader}, nil
}

// framingContext is the server's ConnContext: it lets the handler find
// the framingConn of its request.
func framingContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, framingKey{}, fc)
	}
	return ctx
}

// framingGuard answers the request that stands for a faulty header block.
func framingGuard(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == framingPath {
			if fc, _ := r.Context().Value(framingKey{}).(*framingConn); fc != nil {
				if why := fc.faulty.Load(); why != nil {
					rid := wire.NewRequestID()
					log.Warn("refused a request with faulty framing", "remote", r.RemoteAddr, "reason", *why, "request_id", rid)
					w.Header()["Connection"] = []string{"close"}
					w.Header()[wire.ClientRequestID] = []string{rid}
					wire.WriteProblem(w, http.StatusBadRequest, *why+"; the connection is closed (RFC 9112 section 6.1)", rid, 0)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// framingConn follows the HTTP/1.1 request stream of one connection. Bytes
// pass through as they come, except a header block, which is held until
// it is whole and checked.
type framingConn struct {
	net.Conn
	maxHeader int

	faulty atomic.Pointer[string] // why the framing was refused

	state  int
	remain uint64 // bytes left of a body or chunk, or of a chunk's CRLF
	line   []byte // the header block or chunk-size or trailer line so far
	out    []byte // bytes ready for the reader
	buf    []byte // read buffer
}

const (
	fsStart     = iota // before a request: CR and LF pass, anything else starts a header block
	fsHeader           // in a header block, held in line
	fsBody             // remain bytes of a Content-Length body
	fsChunkSize        // a chunk-size line, collected in line
	fsChunkData        // remain bytes of chunk data, then fsChunkEnd
	fsChunkEnd         // remain bytes of the CRLF after chunk data
	fsTrailer          // trailer lines after the last chunk, line holds the current one
	fsDone             // nothing more is read or passed on
)

// maxChunkLine bounds a chunk-size or trailer line (net/http's limit is 4096).
const maxChunkLine = 8 << 10

func (c *framingConn) Read(p []byte) (int, error) {
	// Body bytes have no framing to check: they go straight into the
	// reader's buffer, in reads as large as it asks for. Through c.buf a
	// 100 MiB upload took 25,600 reads of 4 KiB and a copy of every byte,
	// most of the gateway's CPU for it (bench/README.md, scenario x).
	if len(c.out) == 0 && len(p) > 0 && (c.state == fsBody || c.state == fsChunkData) {
		n, err := c.Conn.Read(p[:min(uint64(len(p)), c.remain)])
		c.passed(uint64(n))
		return n, err
	}
	for len(c.out) == 0 {
		if c.state == fsDone {
			return 0, errEndOfFraming
		}
		if c.buf == nil {
			c.buf = make([]byte, 4096)
		}
		n, err := c.Conn.Read(c.buf)
		c.out = c.out[:0]
		c.feed(c.buf[:n])
		if err != nil {
			if len(c.out) == 0 && c.state == fsHeader && !isTimeout(err) {
				// A connection that ends inside a header block: hand over
				// what came, for net/http to reject.
				c.out = append(c.out, c.line...)
				c.line = c.line[:0]
				c.state = fsDone
			}
			if len(c.out) == 0 {
				return 0, err
			}
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// errEndOfFraming ends the stream after a faulty header block.
var errEndOfFraming = errors.New("connection closed after faulty request framing")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// feed runs b through the state machine, appending to c.out what may be
// passed on.
func (c *framingConn) feed(b []byte) {
	for len(b) > 0 {
		switch c.state {
		case fsStart:
			i := 0
			for i < len(b) && (b[i] == '\r' || b[i] == '\n') {
				i++
			}
			c.out = append(c.out, b[:i]...)
			b = b[i:]
			if len(b) > 0 {
				c.state = fsHeader
				c.line = c.line[:0]
			}
		case fsHeader:
			from := max(len(c.line)-2, 0)
			c.line = append(c.line, b...)
			end := blockEnd(c.line, from)
			if end < 0 {
				b = nil
				if len(c.line) > c.maxHeader {
					// Over net/http's limit: it answers 431 and closes.
					c.out = append(c.out, c.line...)
					c.state = fsDone
				}
				continue
			}
			// The bytes past the block are still in b (c.line is
			// reused from here on).
			b = b[len(b)-(len(c.line)-end):]
			c.line = c.line[:end]
			c.endHeader()
			if c.state == fsDone {
				return
			}
		case fsBody, fsChunkData, fsChunkEnd:
			n := min(uint64(len(b)), c.remain)
			c.out = append(c.out, b[:n]...)
			b = b[n:]
			c.passed(n)
		case fsChunkSize, fsTrailer:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				c.line = append(c.line, b...)
				c.out = append(c.out, b...)
				b = nil
				if len(c.line) > maxChunkLine {
					c.state = fsDone // net/http fails on it too
				}
				continue
			}
			c.line = append(c.line, b[:i+1]...)
			c.out = append(c.out, b[:i+1]...)
			b = b[i+1:]
			line := bytes.TrimRight(c.line, "\r\n")
			c.line = c.line[:0]
			if c.state == fsTrailer {
				if len(line) == 0 {
					c.state = fsStart
				}
				continue
			}
			size, ok := chunkSize(line)
			switch {
			case !ok:
				c.state = fsDone // net/http fails on it too; nothing after it counts
			case size == 0:
				c.state = fsTrailer
			default:
				c.state, c.remain = fsChunkData, size
			}
		case fsDone:
			return
		}
	}
}

// passed accounts for n bytes passed on of a body, of chunk data or of the
// CRLF after it (n <= c.remain), moving on at its end.
func (c *framingConn) passed(n uint64) {
	c.remain -= n
	if c.remain > 0 {
		return
	}
	switch c.state {
	case fsBody:
		c.state = fsStart
	case fsChunkData:
		c.state, c.remain = fsChunkEnd, 2
	case fsChunkEnd:
		c.state = fsChunkSize
		c.line = c.line[:0]
	}
}

// blockEnd returns the length of the header block at the start of buf,
// looking for its end from index from on, or -1 when it is not whole. The
// block ends with an empty line; net/http's reader (textproto) ends lines
// with LF, the CR before it being optional.
func blockEnd(buf []byte, from int) int {
	for i := from; i < len(buf); i++ {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j
		switch {
		case i+1 < len(buf) && buf[i+1] == '\n':
			return i + 2
		case i+2 < len(buf) && buf[i+1] == '\r' && buf[i+2] == '\n':
			return i + 3
		}
	}
	return -1
}

// endHeader checks the held header block and passes it on, or replaces it
// with framingRequest.
func (c *framingConn) endHeader() {
	why, te, cl := checkFraming(c.line)
	if why != "" {
		refused := why // only a refusal's reason goes to the heap
		c.faulty.Store(&refused)
		c.out = append(c.out, framingRequest...)
		c.line = c.line[:0]
		c.state = fsDone
		return
	}
	c.out = append(c.out, c.line...)
	c.line = c.line[:0]
	if cap(c.line) > 16<<10 {
		c.line = nil // a large block was a one-off: do not keep its buffer
	}
	switch {
	case te == "chunked":
		c.state = fsChunkSize
	case te != "":
		// A coding net/http does not support: it answers 501 and closes.
		c.state = fsDone
	case cl > 0:
		c.state, c.remain = fsBody, cl
	default:
		c.state = fsStart
	}
}

// checkFraming reads the framing of a header block: why it is faulty
// ("" if it is not), else its Transfer-Encoding ("chunked" in any case is
// "chunked") and Content-Length. Names are matched as net/http would and
// more loosely (white space before the colon), since a name net/http
// rejects gets a 400 either way.
func checkFraming(block []byte) (why, te string, cl uint64) {
	// No allocation on the way: this runs for every request.
	line, rest, _ := bytes.Cut(block, []byte("\n"))
	line = bytes.TrimRight(line, "\r")
	var version []byte
	if i := bytes.LastIndexByte(line, ' '); i >= 0 {
		version = line[i+1:]
	}
	var teFirst, clFirst []byte
	nTE, nCL, clConflict := 0, 0, false
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue // the end, or a continuation of the previous field
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name = bytes.TrimRight(name, " \t")
		value = bytes.Trim(value, " \t")
		switch {
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if nTE == 0 {
				teFirst = value
			}
			nTE++
		case bytes.EqualFold(name, []byte("Content-Length")):
			if nCL == 0 {
				clFirst = value
			} else if !bytes.Equal(value, clFirst) {
				clConflict = true
			}
			nCL++
		}
	}
	switch {
	case nTE > 0 && nCL > 0:
		return "the request has both Transfer-Encoding and Content-Length", "", 0
	case nTE > 0 && string(version) != "HTTP/1.1":
		return "Transfer-Encoding in a request that is not HTTP/1.1", "", 0
	case nTE == 1 && bytes.EqualFold(teFirst, []byte("chunked")):
		return "", "chunked", 0
	case nTE > 0:
		return "", "unsupported", 0
	case clConflict:
		return "the request has conflicting Content-Length values", "", 0
	case nCL > 0:
		n, ok := decimal(clFirst)
		if !ok {
			return "the request's Content-Length is not a number", "", 0
		}
		return "", "", n
	}
	return "", "", 0
}

func decimal(s []byte) (uint64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + uint64(s[i]-'0')
	}
	return n, true
}

// chunkSize parses a chunk-size line as net/http does: hex digits (at
// most 16), then optional extensions after ';'.
func chunkSize(line []byte) (uint64, bool) {
	line, _, _ = bytes.Cut(line, []byte(";"))
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 16 {
		return 0, false
	}
	var n uint64
	for _, b := range line {
		switch {
		case '0' <= b && b <= '9':
			b -= '0'
		case 'a' <= b && b <= 'f':
			b = b - 'a' + 10
		case 'A' <= b && b <= 'F':
			b = b - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(b)
	}
	return n, true
}
