package tap

import (
	"slices"
	"sync"
	"time"
)

// DefaultBuffer is how many exchanges are kept for display.
const DefaultBuffer = 10000

// latencyWindow is how many recent latencies the percentiles are taken over.
const latencyWindow = 4096

// Stats are the running totals of a tap session.
type Stats struct {
	Total    uint64 // finished exchanges seen
	Failed   uint64 // timeouts, no responders and 5xx replies
	InFlight int    // requests awaiting a reply
	// Dropped counts exchanges that never reached the display: messages the
	// NATS client discarded because intake fell behind, requests beyond
	// MaxPending, and exchanges pushed out of a full hand-off queue.
	Dropped uint64
	P50     time.Duration // over the latest replies
	P99     time.Duration
}

// Feed hands finished exchanges from the intake goroutine to a display
// that takes them in batches. Adding never blocks on the display: when the
// display does not keep up (or is paused) the oldest waiting exchanges are
// dropped and counted, which is what a bounded ring buffer would have
// evicted anyway.
type Feed struct {
	mu    sync.Mutex
	queue []Exchange // ring of waiting exchanges
	head  int
	n     int
	stats Stats
	// Drops reported by intake (client-side and pairing), kept apart from
	// queue evictions so that SetIntakeDrops can overwrite its share.
	intakeDrops uint64
	lat         []time.Duration // ring of recent latencies
	latNext     int
}

// NewFeed returns a feed that holds up to size exchanges between takes.
func NewFeed(size int) *Feed {
	if size <= 0 {
		size = DefaultBuffer
	}
	return &Feed{queue: make([]Exchange, size), lat: make([]time.Duration, 0, latencyWindow)}
}

// Add records a finished exchange and queues it for display.
func (f *Feed) Add(ex Exchange) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Total++
	if ex.Failed() {
		f.stats.Failed++
	}
	if ex.Outcome == OK {
		if len(f.lat) < latencyWindow {
			f.lat = append(f.lat, ex.Latency)
		} else {
			f.lat[f.latNext] = ex.Latency
			f.latNext = (f.latNext + 1) % latencyWindow
		}
	}
	if f.n == len(f.queue) {
		f.queue[f.head] = Exchange{}
		f.head = (f.head + 1) % len(f.queue)
		f.n--
		f.stats.Dropped++
	}
	f.queue[(f.head+f.n)%len(f.queue)] = ex
	f.n++
}

// SetIntake records what the intake goroutine knows: requests in flight
// and its own drops so far (a running total).
func (f *Feed) SetIntake(inFlight int, drops uint64) {
	f.mu.Lock()
	f.stats.InFlight = inFlight
	f.stats.Dropped += drops - f.intakeDrops
	f.intakeDrops = drops
	f.mu.Unlock()
}

// Take appends the waiting exchanges, oldest first, to dst and empties the
// queue; it returns them with the current stats.
func (f *Feed) Take(dst []Exchange) ([]Exchange, Stats) {
	f.mu.Lock()
	for i := 0; i < f.n; i++ {
		j := (f.head + i) % len(f.queue)
		dst = append(dst, f.queue[j])
		f.queue[j] = Exchange{}
	}
	f.head, f.n = 0, 0
	st, lat := f.stats, slices.Clone(f.lat)
	f.mu.Unlock()
	st.P50, st.P99 = percentiles(lat)
	return dst, st
}

// Stats returns the current stats without taking exchanges.
func (f *Feed) Stats() Stats {
	f.mu.Lock()
	st, lat := f.stats, slices.Clone(f.lat)
	f.mu.Unlock()
	st.P50, st.P99 = percentiles(lat)
	return st
}

func percentiles(lat []time.Duration) (p50, p99 time.Duration) {
	if len(lat) == 0 {
		return 0, 0
	}
	slices.Sort(lat)
	at := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1)+0.5)] }
	return at(0.50), at(0.99)
}
