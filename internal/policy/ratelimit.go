package policy

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a number of events per period, written "100/s", "5/m", "1000/h"
// or with a duration as the period, "10/30s".
type Rate struct {
	N   int
	Per time.Duration
}

// ParseRate reads a Rate.
func ParseRate(s string) (Rate, error) {
	n, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("%q is not a rate (write e.g. 100/s, 5/m, 1000/h)", s)
	}
	count, err := strconv.Atoi(n)
	if err != nil || count <= 0 {
		return Rate{}, fmt.Errorf("%q: %q is not a positive whole number", s, n)
	}
	var d time.Duration
	switch per {
	case "s":
		d = time.Second
	case "m":
		d = time.Minute
	case "h":
		d = time.Hour
	default:
		d, err = time.ParseDuration(per)
		if err != nil || d < time.Millisecond {
			return Rate{}, fmt.Errorf("%q: the period %q is not s, m, h or a duration of at least 1ms", s, per)
		}
	}
	return Rate{N: count, Per: d}, nil
}

func (r Rate) String() string {
	switch r.Per {
	case time.Second:
		return strconv.Itoa(r.N) + "/s"
	case time.Minute:
		return strconv.Itoa(r.N) + "/m"
	case time.Hour:
		return strconv.Itoa(r.N) + "/h"
	}
	return strconv.Itoa(r.N) + "/" + r.Per.String()
}

func (r Rate) limit() rate.Limit { return rate.Limit(float64(r.N) / r.Per.Seconds()) }

// KeyKind is what a limit counts requests by.
type KeyKind int

const (
	KeyIP     KeyKind = iota // the client's address
	KeyHeader                // a request header's value
	KeyClaim                 // a claim of the verified token
)

// Key is a parsed "ip", "header:NAME" or "claim:NAME".
type Key struct {
	Kind KeyKind
	Name string // header (canonical) or claim name
}

// ParseKey reads a rate limit key.
func ParseKey(s string) (Key, error) {
	kind, name, _ := strings.Cut(s, ":")
	switch {
	case s == "ip" || s == "":
		return Key{Kind: KeyIP}, nil
	case kind == "header" && name != "":
		return Key{Kind: KeyHeader, Name: http.CanonicalHeaderKey(name)}, nil
	case kind == "claim" && name != "":
		return Key{Kind: KeyClaim, Name: name}, nil
	}
	return Key{}, fmt.Errorf("%q is not a rate limit key (ip, header:NAME or claim:NAME)", s)
}

// LimitConfig is one rate_limit block.
type LimitConfig struct {
	Rate  Rate
	Burst int // 0: Rate.N
	Key   Key
	// MaxKeys bounds the buckets kept; 0: DefaultMaxKeys.
	MaxKeys int
}

// DefaultMaxKeys bounds the buckets one limit keeps: 100,000 buckets are
// about 20 MiB. At it, full buckets are dropped first, then arbitrary ones
// (whose clients then start afresh, the lenient failure).
const DefaultMaxKeys = 100_000

// Limiter is token buckets by key for one limit. A bucket that has filled
// up again is the same as a new one, so it is dropped when the limiter
// sweeps (at most once per refill time): memory follows the keys active
// within that time, however many distinct keys pass over time.
type Limiter struct {
	name    string
	limit   rate.Limit
	burst   int
	key     Key
	refill  time.Duration // empty to full
	maxKeys int

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	nextSweep time.Time
}

// NewLimiter returns the limiter of cfg; name labels it in RateLimit
// headers.
func NewLimiter(name string, cfg LimitConfig) *Limiter {
	burst := cfg.Burst
	if burst <= 0 {
		burst = cfg.Rate.N
	}
	l := &Limiter{
		name:    name,
		limit:   cfg.Rate.limit(),
		burst:   burst,
		key:     cfg.Key,
		maxKeys: cfg.MaxKeys,
		buckets: map[string]*rate.Limiter{},
	}
	if l.maxKeys <= 0 {
		l.maxKeys = DefaultMaxKeys
	}
	l.refill = time.Duration(float64(burst) / float64(l.limit) * float64(time.Second))
	return l
}

// Decision is one limiter's answer for one request.
type Decision struct {
	OK        bool
	Remaining int
	// RetryAfter is how long until a request would be allowed (0 when OK).
	RetryAfter time.Duration
	// Reset is how long until the bucket is full again.
	Reset time.Duration
}

// Allow takes a token from key's bucket at now.
func (l *Limiter) Allow(key string, now time.Time) Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.After(l.nextSweep) || len(l.buckets) >= l.maxKeys {
		l.sweepLocked(now)
	}
	b, ok := l.buckets[key]
	if !ok {
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[key] = b
	}
	d := Decision{OK: true}
	r := b.ReserveN(now, 1)
	if delay := r.DelayFrom(now); delay > 0 {
		r.CancelAt(now)
		d.OK, d.RetryAfter = false, delay
	}
	tokens := b.TokensAt(now)
	d.Remaining = max(int(math.Floor(tokens)), 0)
	d.Reset = time.Duration((float64(l.burst) - tokens) / float64(l.limit) * float64(time.Second))
	return d
}

// sweepLocked drops full buckets and, at maxKeys, arbitrary ones down to
// nine tenths of it, so that a flood pays for a sweep once per tenth.
func (l *Limiter) sweepLocked(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= l.maxKeys {
		keep := l.maxKeys * 9 / 10
		for k := range l.buckets {
			if len(l.buckets) <= keep {
				break
			}
			delete(l.buckets, k)
		}
	}
	l.nextSweep = now.Add(max(l.refill, time.Second))
}

// Len is the number of buckets held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// policyItem is this limit in RateLimit-Policy (IETF httpapi
// draft-ietf-httpapi-ratelimit-headers): quota q requests in a window of
// w seconds, the window being the time to refill the whole burst.
func (l *Limiter) policyItem() string {
	w := max(int(math.Ceil(l.refill.Seconds())), 1)
	return strconv.Quote(l.name) + ";q=" + strconv.Itoa(l.burst) + ";w=" + strconv.Itoa(w)
}

// stateItem is this limit's state in the RateLimit header: r requests
// remaining, t seconds until the quota is whole again.
func (l *Limiter) stateItem(d Decision) string {
	t := int(math.Ceil(d.Reset.Seconds()))
	return strconv.Quote(l.name) + ";r=" + strconv.Itoa(d.Remaining) + ";t=" + strconv.Itoa(t)
}
