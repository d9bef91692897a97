package blob

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// want is the first n bytes of Block repeated, built the plain way.
func want(n int) []byte {
	var b bytes.Buffer
	for b.Len() < n {
		b.Write(Block)
	}
	return b.Bytes()[:n]
}

// TestBlockLooksRandom: a block with a pattern would let a hop that
// compresses, or a generator left unseeded, pass unnoticed.
func TestBlockLooksRandom(t *testing.T) {
	if len(Block) != BlockSize {
		t.Fatalf("Block is %d bytes, want %d", len(Block), BlockSize)
	}
	var counts [256]int
	for _, c := range Block {
		counts[c]++
	}
	for v, c := range counts {
		// 4096 expected per value, with a standard deviation of 64.
		if c < 3500 || c > 4700 {
			t.Fatalf("byte %d occurs %d times in Block, want about 4096", v, c)
		}
	}
}

func TestReaderAndWriteTo(t *testing.T) {
	for _, n := range []int{0, 1, 1000, BlockSize, BlockSize + 1, 3*BlockSize + 12345} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			// Read, in odd-sized pieces.
			got, err := io.ReadAll(io.LimitReader(NewReader(int64(n)), int64(n)+10))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want(n)) {
				t.Errorf("Read: %d bytes, not the blob's first %d", len(got), n)
			}
			// WriteTo, as io.Copy uses it.
			var b bytes.Buffer
			m, err := io.Copy(&b, NewReader(int64(n)))
			if err != nil || m != int64(n) || !bytes.Equal(b.Bytes(), want(n)) {
				t.Errorf("WriteTo: %d bytes (err %v), not the blob's first %d", m, err, n)
			}
		})
	}
}

func TestChecker(t *testing.T) {
	n := 2*BlockSize + 777
	good := want(n)
	tests := []struct {
		name    string
		body    func() []byte
		length  int64
		wantErr string
	}{
		{"whole", func() []byte { return good }, int64(n), ""},
		{"short", func() []byte { return good[:n-1] }, int64(n), "body of 2097928 bytes, want 2097929"},
		{"long", func() []byte { return append(bytes.Clone(good), Block[n%BlockSize]) }, int64(n), "want 2097929"},
		{"one byte changed", func() []byte {
			b := bytes.Clone(good)
			b[BlockSize+5] ^= 1
			return b
		}, int64(n), "differs from the blob at byte 1048581"},
		{"a block repeated out of place", func() []byte {
			b := bytes.Clone(good)
			copy(b[BlockSize:], Block[100:200])
			return b
		}, int64(n), "differs from the blob at byte 1048576"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewChecker()
			body := tt.body()
			// In pieces that straddle block boundaries.
			for p := body; len(p) > 0; {
				k := min(len(p), 300001)
				if m, err := c.Write(p[:k]); m != k || err != nil {
					t.Fatalf("Write = %d, %v", m, err)
				}
				p = p[k:]
			}
			err := c.Err(tt.length)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Err = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Err = %v, want one saying %q", err, tt.wantErr)
			}
		})
	}
}

func TestHandlerOverHTTP(t *testing.T) {
	srv := httptest.NewServer(Handler())
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + Path + "?bytes=3000000")
	if err != nil {
		t.Fatal(err)
	}
	c := NewChecker()
	_, err = io.Copy(c, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != 3000000 {
		t.Fatalf("GET: %d, length %d, err %v", resp.StatusCode, resp.ContentLength, err)
	}
	if err := c.Err(3000000); err != nil {
		t.Error(err)
	}

	resp, err = http.Get(srv.URL + Path + "?bytes=-1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET ?bytes=-1: %d, want 400", resp.StatusCode)
	}

	// Chunked, so the handler cannot take the length from a header.
	pr, pw := io.Pipe()
	go func() { _, err := io.Copy(pw, NewReader(2500000)); pw.CloseWithError(err) }()
	resp, err = http.Post(srv.URL+Path, "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "2500000" {
		t.Errorf("POST: %d %q, want 200 \"2500000\"", resp.StatusCode, body)
	}

	resp, err = http.Get(srv.URL + StreamPath)
	if err != nil {
		t.Fatal(err)
	}
	c = NewChecker()
	_, err = io.Copy(c, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || c.Err(FirstBytes+StreamRest) != nil {
		t.Errorf("GET stream: %d, %d bytes, err %v, check %v", resp.StatusCode, c.N, err, c.Err(FirstBytes+StreamRest))
	}
	if resp.ContentLength != -1 || resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Errorf("GET stream: length %d, X-Accel-Buffering %q; want a chunked reply nginx passes on unbuffered",
			resp.ContentLength, resp.Header.Get("X-Accel-Buffering"))
	}
}

// flushLog records how much of the body was written at each flush.
type flushLog struct {
	*httptest.ResponseRecorder
	at []int
}

func (f *flushLog) Flush() {
	f.at = append(f.at, f.Body.Len())
	f.ResponseRecorder.Flush()
}

func TestStreamFlushesTheFirstBytesAlone(t *testing.T) {
	rec := &flushLog{ResponseRecorder: httptest.NewRecorder()}
	ServeStream(rec, httptest.NewRequest("GET", StreamPath, nil))
	if len(rec.at) == 0 || rec.at[0] != FirstBytes {
		t.Fatalf("flushed with %v bytes written, want a first flush at %d", rec.at, FirstBytes)
	}
	if !bytes.Equal(rec.Body.Bytes(), want(FirstBytes+StreamRest)) {
		t.Errorf("body of %d bytes is not the blob's first %d", rec.Body.Len(), FirstBytes+StreamRest)
	}
}
