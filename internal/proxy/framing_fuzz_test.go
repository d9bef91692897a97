package proxy

import (
	"bytes"
	"testing"
)

// feedAll runs data through a fresh framingConn's state machine in pieces
// of size step, as reads from the socket would deliver it.
func feedAll(data []byte, step int) (out []byte, faulty string) {
	c := &framingConn{maxHeader: 1 << 12}
	for len(data) > 0 {
		n := min(step, len(data))
		c.out = c.out[:0]
		c.feed(data[:n])
		out = append(out, c.out...)
		data = data[n:]
	}
	if why := c.faulty.Load(); why != nil {
		faulty = *why
	}
	return out, faulty
}

// FuzzFraming: how bytes are split into reads never changes what the
// framing check passes on or refuses, and a stream it does not refuse is
// passed on unchanged (a prefix of it, the rest held or dropped).
func FuzzFraming(f *testing.F) {
	for _, s := range []string{
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.0\nTransfer-Encoding: chunked\n\n",
		"\r\n\r\nGET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	} {
		f.Add([]byte(s), 1)
		f.Add([]byte(s), 7)
	}
	f.Fuzz(func(t *testing.T, data []byte, step int) {
		if step <= 0 || step > len(data)+1 {
			step = len(data) + 1
		}
		whole, why := feedAll(data, len(data)+1)
		split, whySplit := feedAll(data, step)
		if !bytes.Equal(whole, split) || why != whySplit {
			t.Fatalf("in one read: %q (%q); in reads of %d: %q (%q)", whole, why, step, split, whySplit)
		}
		// Through Read, which passes body bytes around the state
		// machine, with a reader's buffer of another size than the reads.
		// At the connection's end Read also hands over a header block
		// left incomplete, for net/http to reject.
		ref := &framingConn{maxHeader: 1 << 12}
		ref.feed(data)
		want := bytes.Clone(ref.out)
		if ref.state == fsHeader {
			want = append(want, ref.line...)
		}
		read, fc := readAll(&streamConn{r: bytes.NewReader(data), max: step}, 2*step+1)
		whyRead := ""
		if p := fc.faulty.Load(); p != nil {
			whyRead = *p
		}
		if !bytes.Equal(want, read) || why != whyRead {
			t.Fatalf("want %q (%q); through Read in reads of %d: %q (%q)", want, why, step, read, whyRead)
		}
		if why == "" && !bytes.HasPrefix(data, whole) {
			t.Fatalf("passed on %q, not a prefix of %q", whole, data)
		}
		if why != "" && !bytes.HasSuffix(whole, framingRequest) {
			t.Fatalf("refused (%s) but passed on %q", why, whole)
		}
	})
}

// BenchmarkFraming is the framing check's cost per request on a
// keep-alive connection: one typical header block and a small body.
func BenchmarkFraming(b *testing.B) {
	req := []byte("POST /orders HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n" +
		"Content-Type: application/json\r\nX-Request-Id: 0af7651916cd43dd8448eb211c80319c\r\nContent-Length: 27\r\n\r\n" +
		`{"items":[{"product":"a"}]}`)
	c := &framingConn{maxHeader: 64 << 10}
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		c.out = c.out[:0]
		c.feed(req)
		if c.state != fsStart || len(c.out) != len(req) {
			b.Fatalf("state %d, passed %d of %d bytes", c.state, len(c.out), len(req))
		}
	}
}
