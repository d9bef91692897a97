package proxy

import (
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	for _, tc := range []struct {
		gogc string
		set  int // what the process had before
		want int
	}{
		{gogc: "", set: 100, want: GCPercent},
		{gogc: "50", set: 50, want: 50},  // GOGC=50 as the runtime read it
		{gogc: "off", set: -1, want: -1}, // GOGC=off is respected too
		{gogc: "200", set: 200, want: 200},
	} {
		debug.SetGCPercent(tc.set)
		got := TuneGC(func(k string) string {
			if k == "GOGC" {
				return tc.gogc
			}
			return ""
		})
		if now := debug.SetGCPercent(tc.set); got != tc.want || now != tc.want {
			t.Errorf("GOGC=%q: TuneGC = %d, in force %d; want %d", tc.gogc, got, now, tc.want)
		}
	}
}
