package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/metropolis-dev/metro/bench/blob"
)

func measure(t *testing.T, url string, args ...string) Result {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), append([]string{"-url", url}, args...), &out); err != nil {
		t.Fatalf("transfer %q: %v", args, err)
	}
	var r Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("output %q is not a result: %v", out.String(), err)
	}
	return r
}

func TestTransferAgainstTheBlobHandler(t *testing.T) {
	srv := httptest.NewServer(blob.Handler())
	t.Cleanup(srv.Close)
	tests := []struct {
		args  []string
		op    string
		bytes int64
		n     int
	}{
		{[]string{"-op", "download", "-bytes", "3000000", "-n", "2"}, "download", 3000000, 2},
		{[]string{"-op", "upload", "-bytes", "2500000", "-n", "3"}, "upload", 2500000, 3},
		{[]string{"-op", "ttfb", "-n", "4"}, "ttfb", blob.FirstBytes + blob.StreamRest, 4},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			r := measure(t, srv.URL, tt.args...)
			if r.Errors != 0 || r.Op != tt.op || r.Bytes != tt.bytes || len(r.Seconds) != tt.n {
				t.Fatalf("result %+v, want %d successful %ss of %d bytes", r, tt.n, tt.op, tt.bytes)
			}
			for i, s := range r.Seconds {
				if s <= 0 {
					t.Errorf("request %d took %v s", i, s)
				}
			}
			if tt.op == "ttfb" {
				if len(r.TTFBms) != tt.n || len(r.MBps) != 0 {
					t.Errorf("ttfb: %d first-byte times and %d rates, want %d and none", len(r.TTFBms), len(r.MBps), tt.n)
				}
				for i, v := range r.TTFBms {
					// The first byte cannot come after the last.
					if v <= 0 || v > r.Seconds[i]*1e3 {
						t.Errorf("request %d: first byte at %v ms, last at %v ms", i, v, r.Seconds[i]*1e3)
					}
				}
				return
			}
			if len(r.MBps) != tt.n {
				t.Fatalf("%d rates, want %d", len(r.MBps), tt.n)
			}
			for i, v := range r.MBps {
				if want := float64(tt.bytes) / r.Seconds[i] / 1e6; v != want {
					t.Errorf("rate %d = %v, want bytes/seconds = %v", i, v, want)
				}
			}
		})
	}
}

// TestTransferCountsWrongBodies: a server that corrupts, cuts or miscounts
// a body fails the request, so a broken hop cannot post a good rate.
func TestTransferCountsWrongBodies(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /blob", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(blob.NewReader(2000000))
		b[1234567] ^= 0xff
		w.Write(b)
	})
	mux.HandleFunc("POST /blob", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		io.WriteString(w, strconv.FormatInt(n-1, 10))
	})
	mux.HandleFunc("GET /blob/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Write(blob.Block[:blob.FirstBytes])
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	for _, tt := range []struct {
		op, why string
	}{
		{"download", "differs from the blob at byte 1234567"},
		{"upload", "the server counted"},
		{"ttfb", "body of 1024 bytes, want 66560"},
	} {
		t.Run(tt.op, func(t *testing.T) {
			r := measure(t, srv.URL, "-op", tt.op, "-bytes", "2000000", "-n", "2")
			// ttfb's unmeasured first request fails too.
			want := 2
			if tt.op == "ttfb" {
				want = 3
			}
			if r.Errors != want || len(r.Seconds) != 0 || len(r.MBps) != 0 || !strings.Contains(r.Error, tt.why) {
				t.Errorf("result %+v, want %d errors saying %q and no figures", r, want, tt.why)
			}
		})
	}
	down := measure(t, "http://127.0.0.1:1", "-op", "download", "-bytes", "10")
	if down.Errors != 1 || !strings.Contains(down.Error, "GET /blob") {
		t.Errorf("against no server: %+v, want one error", down)
	}
}

func TestTransferUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-url", "127.0.0.1:8080"},
		{"-url", "http://127.0.0.1:8080", "-op", "sideways"},
		{"-url", "http://127.0.0.1:8080", "-n", "0"},
		{"-url", "http://127.0.0.1:8080", "-bytes", "-1"},
	} {
		if err := run(context.Background(), args, io.Discard); err == nil {
			t.Errorf("transfer %q succeeded, want a usage error", args)
		}
	}
}
