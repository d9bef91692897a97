package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

type loadConfig struct {
	Concurrency int
	Duration    time.Duration
	Warmup      time.Duration
	Timeout     time.Duration
}

// result is what load prints; its field names are read by bench/run's report.
type result struct {
	Concurrency int     `json:"concurrency"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	Seconds     float64 `json:"seconds"`
	RPS         float64 `json:"rps"`
	P50Ms       float64 `json:"p50_ms"`
	P90Ms       float64 `json:"p90_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
}

// load keeps cfg.Concurrency requests in flight on nc for cfg.Warmup, then
// for cfg.Duration while recording every latency, the way wrk keeps 64
// connections busy in the HTTP scenarios.
func load(ctx context.Context, nc *nats.Conn, subj string, cfg loadConfig) (result, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Warmup > 0 {
		if _, _, _, err := phase(ctx, nc, subj, cfg, cfg.Warmup, false); err != nil {
			return result{}, fmt.Errorf("warming up: %w", err)
		}
	}
	lat, errs, elapsed, err := phase(ctx, nc, subj, cfg, cfg.Duration, true)
	if err != nil {
		return result{}, err
	}
	if len(lat) == 0 {
		return result{}, fmt.Errorf("no request to %s was answered (%d errors)", subj, errs)
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return result{
		Concurrency: cfg.Concurrency,
		Requests:    len(lat),
		Errors:      errs,
		Seconds:     elapsed.Seconds(),
		RPS:         float64(len(lat)) / elapsed.Seconds(),
		P50Ms:       ms(percentile(lat, 50)),
		P90Ms:       ms(percentile(lat, 90)),
		P99Ms:       ms(percentile(lat, 99)),
		MaxMs:       ms(lat[len(lat)-1]),
	}, nil
}

// phase runs the requesters for d. Each requester stops issuing once d has
// passed but lets its last request finish, so no answered request is thrown
// away and elapsed covers every latency recorded.
func phase(ctx context.Context, nc *nats.Conn, subj string, cfg loadConfig, d time.Duration, record bool) (lat []time.Duration, errs int, elapsed time.Duration, err error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		nerr     atomic.Int64
		fatal    atomic.Pointer[error]
		start    = time.Now()
		deadline = start.Add(d)
	)
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			if record {
				mine = make([]time.Duration, 0, 1<<14)
			}
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				_, rerr := nc.Request(subj, nil, cfg.Timeout)
				switch {
				case rerr == nil:
					if record {
						mine = append(mine, time.Since(t0))
					}
				case errors.Is(rerr, nats.ErrConnectionClosed):
					fatal.CompareAndSwap(nil, &rerr)
					return
				default:
					nerr.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed = time.Since(start)
	if p := fatal.Load(); p != nil {
		return nil, 0, 0, fmt.Errorf("requesting %s: %w", subj, *p)
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, 0, fmt.Errorf("load interrupted: %w", err)
	}
	return lat, int(nerr.Load()), elapsed, nil
}

// percentile returns the p-th percentile of sorted by the nearest-rank
// method: the smallest latency that at least p% of requests did not exceed.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(float64(len(sorted))*p/100)) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}
