package policy

import (
	"strconv"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want Rate
		err  bool
	}{
		{"100/s", Rate{100, time.Second}, false},
		{"5/m", Rate{5, time.Minute}, false},
		{"1000/h", Rate{1000, time.Hour}, false},
		{"10/30s", Rate{10, 30 * time.Second}, false},
		{" 7/s ", Rate{7, time.Second}, false},
		{"100", Rate{}, true},
		{"0/s", Rate{}, true},
		{"-1/s", Rate{}, true},
		{"1.5/s", Rate{}, true},
		{"10/d", Rate{}, true},
		{"10/0s", Rate{}, true},
		{"/s", Rate{}, true},
	}
	for _, tc := range tests {
		got, err := ParseRate(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err == nil {
			if back, err := ParseRate(got.String()); err != nil || back != got {
				t.Errorf("ParseRate(%q.String() = %q) = %v, %v", tc.in, got.String(), back, err)
			}
		}
	}
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		in   string
		want Key
		err  bool
	}{
		{"ip", Key{Kind: KeyIP}, false},
		{"", Key{Kind: KeyIP}, false},
		{"header:x-api-key", Key{Kind: KeyHeader, Name: "X-Api-Key"}, false},
		{"claim:sub", Key{Kind: KeyClaim, Name: "sub"}, false},
		{"claim:", Key{}, true},
		{"header:", Key{}, true},
		{"user:sub", Key{}, true},
		{"IP", Key{}, true},
	}
	for _, tc := range tests {
		got, err := ParseKey(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseKey(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"100/s", "5/m", "1/h", "10/30s", "x/y", "1/1ns", "9999999999999999999/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if r.N <= 0 || r.Per < time.Millisecond {
			t.Fatalf("ParseRate(%q) = %+v: not a usable rate", s, r)
		}
		if back, err := ParseRate(r.String()); err != nil || back != r {
			t.Fatalf("ParseRate(%q) = %+v, which prints as %q and reads back as %+v, %v", s, r, r.String(), back, err)
		}
		if l := NewLimiter("x", LimitConfig{Rate: r}); l.burst < 1 || l.limit <= 0 {
			t.Fatalf("limiter of %q: burst %d, limit %v", s, l.burst, l.limit)
		}
	})
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"ip", "header:X-Api-Key", "claim:sub", "claim:", "x:y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		if k.Kind != KeyIP && k.Name == "" {
			t.Fatalf("ParseKey(%q) = %+v: a named key without a name", s, k)
		}
	})
}

// TestLimiterBucket: a burst passes, the next is refused with the time
// until a token is back, and the bucket refills at the rate.
func TestLimiterBucket(t *testing.T) {
	l := NewLimiter("global", LimitConfig{Rate: Rate{10, time.Second}, Burst: 3})
	now := time.Unix(1_000_000, 0)
	for i := range 3 {
		if d := l.Allow("k", now); !d.OK || d.Remaining != 2-i {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	d := l.Allow("k", now)
	if d.OK || d.RetryAfter != 100*time.Millisecond || d.Remaining != 0 || d.Reset != 300*time.Millisecond {
		t.Fatalf("over the burst: %+v", d)
	}
	if d := l.Allow("k", now.Add(100*time.Millisecond)); !d.OK {
		t.Fatalf("after one token's time: %+v", d)
	}
	if got := l.policyItem(); got != `"global";q=3;w=1` {
		t.Errorf("policy item %s", got)
	}
}

// TestLimiterMemoryBounded: 100,000 distinct keys, as a flood of client
// addresses would bring, do not make the limiter keep 100,000 buckets:
// those that have refilled are dropped, and MaxKeys caps the rest.
func TestLimiterMemoryBounded(t *testing.T) {
	t.Run("idle buckets dropped", func(t *testing.T) {
		// 1000 new keys per second for 100 seconds, each bucket full
		// again 0.1s after its one request.
		l := NewLimiter("global", LimitConfig{Rate: Rate{10, time.Second}, Burst: 10})
		start := time.Unix(1_000_000, 0)
		peak := 0
		for i := range 100_000 {
			now := start.Add(time.Duration(i) * time.Millisecond)
			if d := l.Allow("ip:"+strconv.Itoa(i), now); !d.OK {
				t.Fatalf("key %d refused", i)
			}
			peak = max(peak, l.Len())
		}
		// One sweep a second leaves at most about two seconds of keys.
		if peak > 2_100 {
			t.Errorf("peak of %d buckets for 1000 keys/s, want about 2000 at most", peak)
		}
	})
	t.Run("cap", func(t *testing.T) {
		// All at once, none refilled: MaxKeys holds.
		l := NewLimiter("global", LimitConfig{Rate: Rate{1, time.Hour}, Burst: 1, MaxKeys: 1000})
		now := time.Unix(1_000_000, 0)
		for i := range 100_000 {
			l.Allow("ip:"+strconv.Itoa(i), now)
			if n := l.Len(); n > 1000 {
				t.Fatalf("%d buckets after %d keys, cap 1000", n, i+1)
			}
		}
	})
}
