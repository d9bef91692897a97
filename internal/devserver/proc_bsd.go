//go:build unix && !linux

package devserver

import (
	"errors"
	"syscall"
)

// sysProcAttr puts a child in its own process group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// groupAlive reports whether group pgid has a member left.
func groupAlive(pgid int) bool { return syscall.Kill(-pgid, 0) == nil }

// liveGroupMembers would list group pgid's processes; without /proc it
// cannot.
func liveGroupMembers(int) ([]int, error) { return nil, errors.ErrUnsupported }
