// Package leaktest checks that code under test leaves no goroutine behind.
// It counts rather than names them: the embedded NATS servers and clients
// that tests share run goroutines of their own, which are there before the
// count is taken and after it is checked.
package leaktest

import (
	"runtime"
	"testing"
	"time"
)

// Settle waits until at most want goroutines run, failing t with every
// goroutine's stack if that does not happen within 10s. Take want with
// runtime.NumGoroutine before starting what should stop.
func Settle(t testing.TB, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
