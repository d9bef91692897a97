package report

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	tests := []struct {
		file string
		want Wrk
	}{
		{"wrk-direct.txt", Wrk{
			Requests: 41762, Elapsed: 3050 * time.Millisecond, RPS: 13693.50,
			Latency: map[int]time.Duration{50: 2290 * time.Microsecond, 75: 5430 * time.Microsecond,
				90: 8820 * time.Microsecond, 99: 19570 * time.Microsecond},
		}},
		{"wrk-errors.txt", Wrk{
			Requests: 212, Elapsed: 10100 * time.Millisecond, RPS: 20.99,
			Latency: map[int]time.Duration{50: 1500 * time.Millisecond, 75: 1800 * time.Millisecond,
				90: 1950 * time.Millisecond, 99: 2 * time.Minute},
			Non2xx: 40, SocketErrors: 24,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := ParseWrk(f)
			if err != nil {
				t.Fatalf("ParseWrk: %v", err)
			}
			if got.Requests != tt.want.Requests || got.RPS != tt.want.RPS || !near(got.Elapsed, tt.want.Elapsed) ||
				got.Non2xx != tt.want.Non2xx || got.SocketErrors != tt.want.SocketErrors {
				t.Errorf("ParseWrk = %+v, want %+v", got, tt.want)
			}
			if len(got.Latency) != len(tt.want.Latency) {
				t.Errorf("latencies %v, want %v", got.Latency, tt.want.Latency)
			}
			for p, d := range tt.want.Latency {
				if !near(got.Latency[p], d) {
					t.Errorf("p%d = %v, want %v", p, got.Latency[p], d)
				}
			}
		})
	}
}

// near allows for float rounding in "2.29ms" -> time.Duration.
func near(a, b time.Duration) bool {
	d := a - b
	return d > -time.Microsecond/100 && d < time.Microsecond/100
}

func TestParseWrkRejects(t *testing.T) {
	direct, err := os.ReadFile(filepath.Join("testdata", "wrk-direct.txt"))
	if err != nil {
		t.Fatal(err)
	}
	noLatency, err := os.ReadFile(filepath.Join("testdata", "wrk-nolatency.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		input  string
		notWrk bool
	}{
		{"empty", "", true},
		{"connection refused", "unable to connect to 127.0.0.1:1 Connection refused\n", true},
		{"without --latency", string(noLatency), true},
		{"no Requests/sec line", strings.Replace(string(direct), "Requests/sec:", "Req/s:", 1), true},
		{"bad unit", strings.Replace(string(direct), "2.29ms", "2.29xs", 1), false},
		{"negative latency", strings.Replace(string(direct), "2.29ms", "-2.29ms", 1), false},
		{"bad request count", strings.Replace(string(direct), "41762 requests", "4x1762 requests", 1), false},
		{"bad percent", strings.Replace(string(direct), "50%", "5o%", 1), false},
		{"bad socket errors", strings.Replace(string(direct), "Requests/sec:", "  Socket errors: connect 0, read\nRequests/sec:", 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseWrk(strings.NewReader(tt.input))
			if err == nil {
				t.Fatal("ParseWrk succeeded, want an error")
			}
			if got := errors.Is(err, ErrNotWrk); got != tt.notWrk {
				t.Errorf("errors.Is(%v, ErrNotWrk) = %v, want %v", err, got, tt.notWrk)
			}
		})
	}
}

func FuzzParseWrk(f *testing.F) {
	for _, name := range []string{"wrk-direct.txt", "wrk-errors.txt", "wrk-nolatency.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("Latency Distribution\n 50% 1us\n 99% 1h\n0 requests in 0s,\nRequests/sec: 0\n")
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWrk(strings.NewReader(s))
		if err != nil {
			return
		}
		// Whatever parses must be usable by Summarize without checks.
		if w.Requests < 0 || w.RPS < 0 || w.Elapsed < 0 || w.Non2xx < 0 || w.SocketErrors < 0 {
			t.Fatalf("negative figure in %+v", w)
		}
		for _, p := range []int{50, 99} {
			d, ok := w.Latency[p]
			if !ok || d < 0 {
				t.Fatalf("p%d missing or negative in %+v", p, w)
			}
		}
	})
}
