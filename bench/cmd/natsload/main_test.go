package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of four is the second", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of a hundred is the 99th", ms(seq(100)...), 99, 99 * time.Millisecond},
		{"p99 of ten is the max", ms(seq(10)...), 99, 10 * time.Millisecond},
		{"p100 is the max", ms(1, 2, 3), 100, 3 * time.Millisecond},
		{"p0 is the min", ms(1, 2, 3), 0, 1 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestRespondAndLoad(t *testing.T) {
	s := natstest.Run(t)
	ctx, cancel := context.WithCancel(context.Background())
	ready := metrotest.NewFirstLine()
	done := make(chan struct{})
	var respErr error
	go func() {
		defer close(done)
		respErr = run(ctx, []string{"respond", "-nats", s.ClientURL(), "-subject", "t.hello"}, ready)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if respErr != nil {
			t.Errorf("respond: %v", respErr)
		}
	})
	select {
	case line := <-ready.C:
		if line != "ready" {
			t.Fatalf("responder announced %q, want ready", line)
		}
	case <-done:
		t.Fatal("responder exited before it was ready")
	case <-time.After(10 * time.Second):
		t.Fatal("responder not ready after 10s")
	}

	var out bytes.Buffer
	err := run(context.Background(), []string{"load", "-nats", s.ClientURL(), "-subject", "t.hello",
		"-c", "8", "-d", "300ms", "-warmup", "50ms"}, &out)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	var r result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("load printed %q: %v", out.String(), err)
	}
	if r.Concurrency != 8 || r.Requests == 0 || r.Errors != 0 {
		t.Errorf("result %+v: want concurrency 8, some requests, no errors", r)
	}
	if r.RPS <= 0 || r.Seconds <= 0 {
		t.Errorf("result %+v: want positive rps and seconds", r)
	}
	if !(0 < r.P50Ms && r.P50Ms <= r.P90Ms && r.P90Ms <= r.P99Ms && r.P99Ms <= r.MaxMs) {
		t.Errorf("result %+v: percentiles out of order", r)
	}
}

func TestLoadWithoutResponder(t *testing.T) {
	s := natstest.Run(t)
	err := run(context.Background(), []string{"load", "-nats", s.ClientURL(), "-subject", "nobody.here",
		"-c", "2", "-d", "100ms", "-warmup", "0s"}, io.Discard)
	if err == nil {
		t.Fatal("load with no responder succeeded, want an error saying nothing was answered")
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"serve"}, {"load", "-c", "0"}, {"load", "-bogus"}} {
		if err := run(context.Background(), args, io.Discard); err == nil {
			t.Errorf("run(%q) succeeded, want a usage error", args)
		}
	}
}
