//go:build unix

package devserver

import (
	"os"
	"syscall"
	"time"
)

// killGroup signals the process group that p leads. ESRCH (nobody left)
// is the normal case after the leader is gone.
func killGroup(p *os.Process, sig syscall.Signal) {
	syscall.Kill(-p.Pid, sig) //nolint:errcheck
}

// waitGroupGone waits, up to limit, until no process of group pgid is
// left: SIGKILL is delivered asynchronously, and "stopped" should mean
// gone, not dying.
func waitGroupGone(pgid int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for groupAlive(pgid) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}
