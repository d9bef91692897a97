package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
)

// streamConn is a net.Conn whose reads come from a byte stream, at most
// max bytes each, and are counted.
type streamConn struct {
	net.Conn
	r     *bytes.Reader
	max   int
	reads int
}

func (c *streamConn) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p[:min(len(p), c.max)])
}

// readAll reads c through a framingConn with a buffer of size bufSize.
func readAll(c *streamConn, bufSize int) ([]byte, *framingConn) {
	fc := &framingConn{Conn: c, maxHeader: 1 << 12}
	var out []byte
	buf := make([]byte, bufSize)
	for {
		n, err := fc.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, fc
		}
	}
}

// TestFramingReadsBodiesWhole: a body reaches the reader in reads as large
// as it asks for, not through the 4 KiB buffer the header blocks need.
// Through that buffer a 100 MiB upload cost the gateway 25,600 reads.
func TestFramingReadsBodiesWhole(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for _, tc := range []struct {
		name string
		req  string
	}{
		{"content-length", "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)},
		{"chunked", "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
			strconv.FormatInt(int64(len(body)), 16) + "\r\n" + string(body) + "\r\n0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &streamConn{r: bytes.NewReader([]byte(tc.req)), max: 1 << 20}
			got, _ := readAll(c, 64<<10)
			if !bytes.Equal(got, []byte(tc.req)) {
				t.Fatalf("passed on %d bytes, want the %d of the request unchanged", len(got), len(tc.req))
			}
			// 16 reads of 64 KiB for the body, a few for the header block,
			// the chunk lines and the end.
			if c.reads > 24 {
				t.Errorf("%d reads of the connection for a 1 MiB body read 64 KiB at a time, want at most 24", c.reads)
			}
		})
	}
}

// TestFramingReadMatchesFeed: however the connection and the reader split
// the bytes, Read passes on exactly what the state machine does when fed
// the stream in one piece, and refuses the same framing.
func TestFramingReadMatchesFeed(t *testing.T) {
	streams := []string{
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n10\r\n" + strings.Repeat("z", 16) +
			"\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPOST /s HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 9000\r\n\r\n" + strings.Repeat("b", 9000) + "\r\nGET / HTTP/1.1\r\n\r\n",
	}
	for i, s := range streams {
		want, wantWhy := feedAll([]byte(s), len(s)+1)
		for _, connMax := range []int{1, 3, 100, 5000, 1 << 20} {
			for _, bufSize := range []int{1, 7, 4096, 64 << 10} {
				c := &streamConn{r: bytes.NewReader([]byte(s)), max: connMax}
				got, fc := readAll(c, bufSize)
				why := ""
				if p := fc.faulty.Load(); p != nil {
					why = *p
				}
				if !bytes.Equal(got, want) || why != wantWhy {
					t.Errorf("stream %d, reads of %d, buffer %d: passed on %q (%q), want %q (%q)",
						i, connMax, bufSize, got, why, want, wantWhy)
				}
			}
		}
	}
}

// TestFramingReadKeepsErrors: an error of the connection in the middle of
// a body reaches the reader.
func TestFramingReadKeepsErrors(t *testing.T) {
	req := "POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly this much"
	c := &streamConn{r: bytes.NewReader([]byte(req)), max: 1 << 20}
	got, _ := readAll(c, 64<<10)
	if string(got) != req {
		t.Errorf("passed on %q, want %q", got, req)
	}
	fc := &framingConn{Conn: &streamConn{r: bytes.NewReader([]byte(req)), max: 1 << 20}, maxHeader: 1 << 12}
	buf := make([]byte, 64<<10)
	var err error
	for err == nil {
		_, err = fc.Read(buf)
	}
	if !errors.Is(err, io.EOF) {
		t.Errorf("a body cut short ends with %v, want io.EOF from the connection", err)
	}
}
