// Package loadtest drives load at a server as clients would, for the tests
// of how metro behaves under more than it can serve.
package loadtest

import (
	"sync"
	"time"
)

// OpenLoop calls send(i) for each i below n, each in a goroutine of its
// own and at its own time, interval after the one before, whether or not
// earlier calls have returned: load that does not ease off when the
// server slows down, as a crowd of clients would not. It returns how long
// the sending took and wait, which returns once every call has.
func OpenLoop(n int, interval time.Duration, send func(i int)) (sent time.Duration, wait func()) {
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() { send(i) })
	}
	return time.Since(start), wg.Wait
}
