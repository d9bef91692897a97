package worker

import (
	"context"
	rtmetrics "runtime/metrics"
	"time"
)

// Handlers that compute share the CPU: the more of them run at once, the
// longer each takes, and past a point none finishes before its deadline
// (256 handlers of 20ms of CPU on 2 cores take 2.5s apiece), while the
// worker's own NATS reads and writes wait their turn behind them. Handlers
// that wait on I/O do not: they sleep in the meantime, whatever their
// number. What tells the two apart is how long runnable goroutines wait
// for a CPU (the Go runtime's scheduling latency): a millisecond or less
// on a worker with CPU to spare, tens or hundreds of them on one whose
// handlers want more CPU than it has. cpuGuard samples it and has the
// backlog run fewer handlers while it is high, and more again once it is
// low and requests are waiting.
const (
	guardEvery = 100 * time.Millisecond
	// congested is the scheduling latency, at the 90th percentile over
	// one sample, above which the CPU is taken for saturated.
	congested = 10 * time.Millisecond
)

const schedLatencies = "/sched/latencies:seconds"

// guardCPU samples the scheduling latency until ctx ends, telling b.
func guardCPU(ctx context.Context, b *backlog) {
	sample := []rtmetrics.Sample{{Name: schedLatencies}}
	rtmetrics.Read(sample)
	if sample[0].Value.Kind() != rtmetrics.KindFloat64Histogram {
		return // not this runtime's: no guard
	}
	prev := append([]uint64(nil), sample[0].Value.Float64Histogram().Counts...)
	t := time.NewTicker(guardEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rtmetrics.Read(sample)
		h := sample[0].Value.Float64Histogram()
		b.pace(quantile(h, prev, 0.9) > congested.Seconds())
		copy(prev, h.Counts)
	}
}

// quantile is the q-th quantile of what h counted since prev, as the
// lower bound of its bucket (0 when nothing was counted).
func quantile(h *rtmetrics.Float64Histogram, prev []uint64, q float64) float64 {
	var total uint64
	for i, c := range h.Counts {
		total += c - prev[i]
	}
	if total == 0 {
		return 0
	}
	want := uint64(q * float64(total))
	var seen uint64
	for i, c := range h.Counts {
		seen += c - prev[i]
		if seen > want {
			return max(h.Buckets[i], 0)
		}
	}
	return 0
}
