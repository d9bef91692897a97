package metrotest

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that notes how a test would have ended.
type recorder struct {
	testing.TB
	ended []string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(f string, a ...any) {
	r.ended = append(r.ended, "fail: "+fmt.Sprintf(f, a...))
}
func (r *recorder) Skipf(f string, a ...any) {
	r.ended = append(r.ended, "skip: "+fmt.Sprintf(f, a...))
}

// TestNeedTool: a missing tool fails the test under CI and skips it,
// naming the tool, elsewhere; a present one is found.
func TestNeedTool(t *testing.T) {
	const missing = "metro-no-such-tool"
	for _, tc := range []struct{ ci, want string }{{"true", "fail: " + missing}, {"", "skip: " + missing}} {
		t.Setenv("CI", tc.ci)
		r := &recorder{TB: t}
		NeedTool(r, missing, "something")
		if len(r.ended) == 0 || !strings.HasPrefix(r.ended[0], tc.want) {
			t.Errorf("CI=%q: %q, want it to start %q", tc.ci, r.ended, tc.want)
		}
	}
	r := &recorder{TB: t}
	if p := NeedTool(r, "go", "Go"); p == "" || len(r.ended) > 0 {
		t.Errorf("go: %q, %q", p, r.ended)
	}
}
