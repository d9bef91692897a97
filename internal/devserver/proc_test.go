package devserver

import (
	"strings"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/metrotest"
)

func TestProcStop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		script     string
		grace      time.Duration
		force      bool
		wantStatus string
	}{
		{"exits on SIGTERM", "echo ready; exec sleep 1000", time.Minute, false, "signal: terminated"},
		{"ignores SIGTERM: killed after the grace", `trap "" TERM; echo ready; sleep 1000 & sleep 1000`, 200 * time.Millisecond, false, "signal: killed"},
		// The grace outlasts the test: only force can end it in time.
		{"ignores SIGTERM: forced", `trap "" TERM; echo ready; sleep 1000`, time.Hour, true, "signal: killed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out metrotest.LockedBuffer
			c := newConsole(&out, false, []string{"w"})
			p, err := startProc(c, procSpec{name: "w", argv: []string{"sh", "-c", tt.script}, dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			metrotest.WaitFor(t, "the process to start", 10*time.Second, func() bool { return strings.Contains(out.String(), "w | ready") })
			var members []int
			metrotest.WaitFor(t, "its children", 10*time.Second, func() bool {
				members = groupMembers(p.pid())
				return len(members) == 1+strings.Count(tt.script, "sleep 1000 &")+strings.Count(tt.script, "; sleep 1000")
			})
			force := make(chan struct{})
			if tt.force {
				close(force)
			}
			p.stop(tt.grace, force)
			if !p.expected() {
				t.Error("a stopped process does not count as expected to exit")
			}
			if got := p.exitStatus(); got != tt.wantStatus {
				t.Errorf("exit status %q, want %q", got, tt.wantStatus)
			}
			for _, m := range members {
				if alive(m) {
					t.Errorf("pid %d of group %d survived", m, p.pid())
				}
			}
		})
	}
}

// TestProcCrashKillsItsGroup: when a worker dies on its own, what it
// started dies with it.
func TestProcCrashKillsItsGroup(t *testing.T) {
	t.Parallel()
	var out metrotest.LockedBuffer
	c := newConsole(&out, false, []string{"w"})
	p, err := startProc(c, procSpec{name: "w", argv: []string{"sh", "-c", "sleep 1000 & wait"}, dir: t.TempDir(), env: []string{"X=1"}})
	if err != nil {
		t.Fatal(err)
	}
	var members []int
	metrotest.WaitFor(t, "the child", 10*time.Second, func() bool {
		members = groupMembers(p.pid())
		return len(members) == 2
	})
	// Kill the shell alone, as a crash would end it.
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if p.expected() {
		t.Error("a crash counts as expected")
	}
	for _, m := range members {
		if alive(m) {
			t.Errorf("pid %d survived its leader", m)
		}
	}
}
