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
	// Dropped counts exchanges whose end never reached the display:
	// messages the NATS client discarded because intake fell behind,
	// requests beyond MaxPending, and finished exchanges pushed out of a
	// full hand-off queue.
	Dropped uint64
	P50     time.Duration // over the latest replies
	P99     time.Duration
}

// Feed hands exchanges, as they start and as they finish, from the intake
// goroutine to a display that takes them in batches. Adding never blocks
// on the display: when the display does not keep up (or is paused) the
// oldest waiting entries are dropped, which is what a bounded ring buffer
// would have evicted anyway. Dropped finishes are counted, and named in
// the next batch so that the display can mark a row it shows as pending.
type Feed struct {
	mu    sync.Mutex
	queue []Exchange // ring of waiting entries
	head  int
	n     int
	lost  []uint64 // Seq of finished exchanges dropped since the last take
	stats Stats
	// Drops reported by intake (client-side and pairing), kept apart from
	// queue drops so that SetIntake can overwrite its share.
	intakeDrops uint64
	lat         []time.Duration // ring of recent latencies
	latNext     int
}

// maxLost bounds the dropped finishes named in one batch; past it the
// display keeps those rows as pending until they are evicted.
const maxLost = 4096

// Batch is what a display takes from the feed at once.
type Batch struct {
	Exchanges []Exchange // started (Pending) and finished, in intake order
	Lost      []uint64   // Seq of finished exchanges dropped before display
	Stats     Stats
}

// NewFeed returns a feed that holds up to size entries between takes.
func NewFeed(size int) *Feed {
	if size <= 0 {
		size = DefaultBuffer
	}
	return &Feed{queue: make([]Exchange, size), lat: make([]time.Duration, 0, latencyWindow)}
}

// Add counts a finished exchange in the stats and queues ex, started or
// finished, for display.
func (f *Feed) Add(ex Exchange) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ex.Outcome != Pending {
		f.count(&ex)
	}
	if f.n == len(f.queue) {
		old := &f.queue[f.head]
		if old.Outcome != Pending {
			// A dropped start needs no record: its finish, if kept, is shown
			// as a row of its own.
			f.stats.Dropped++
			if len(f.lost) < maxLost {
				f.lost = append(f.lost, old.Seq)
			}
		}
		*old = Exchange{}
		f.head = (f.head + 1) % len(f.queue)
		f.n--
	}
	f.queue[(f.head+f.n)%len(f.queue)] = ex
	f.n++
}

func (f *Feed) count(ex *Exchange) {
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

// Take empties the feed into b, reusing b's slices: the waiting entries
// oldest first, the dropped finishes, and the current stats.
func (f *Feed) Take(b *Batch) {
	b.Exchanges, b.Lost = b.Exchanges[:0], b.Lost[:0]
	f.mu.Lock()
	for i := 0; i < f.n; i++ {
		j := (f.head + i) % len(f.queue)
		b.Exchanges = append(b.Exchanges, f.queue[j])
		f.queue[j] = Exchange{}
	}
	f.head, f.n = 0, 0
	b.Lost = append(b.Lost, f.lost...)
	f.lost = f.lost[:0]
	st, lat := f.stats, slices.Clone(f.lat)
	f.mu.Unlock()
	st.P50, st.P99 = percentiles(lat)
	b.Stats = st
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
