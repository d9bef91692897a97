//go:build unix

package devserver

import (
	"os"
	"syscall"
)

// killGroup signals the process group that p leads. ESRCH (nobody left)
// is the normal case after the leader is gone.
func killGroup(p *os.Process, sig syscall.Signal) {
	syscall.Kill(-p.Pid, sig) //nolint:errcheck
}
