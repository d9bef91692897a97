package subject_test

import (
	"testing"

	"github.com/metropolis-dev/metro/internal/subject"
)

// BenchmarkAppend is the gateway's per-request cost of the codec; it must
// stay at zero allocations.
func BenchmarkAppend(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 128)
	for b.Loop() {
		var err error
		if buf, err = subject.Append(buf[:0], "", "GET", "/users/42/orders"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendEscaped(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 128)
	for b.Loop() {
		var err error
		if buf, err = subject.Append(buf[:0], "api", "GET", "/files/caf%C3%A9/a%20b.txt"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := subject.Parse("", "users.42.orders.GET"); err != nil {
			b.Fatal(err)
		}
	}
}
