package metrotest

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing t if limit passes first. It
// polls often at first and then every 100ms, so that a condition met at
// once is seen at once and a slow one (a build, a server starting) is not
// asked hundreds of times a second.
func WaitFor(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for pause := time.Millisecond; !cond(); pause = min(2*pause, 100*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(pause)
	}
}
