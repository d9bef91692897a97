//go:build !unix

package devserver

import (
	"os"
	"syscall"
	"time"
)

// Without process groups, a worker's own children are its business.

func sysProcAttr() *syscall.SysProcAttr { return nil }

func killGroup(p *os.Process, _ syscall.Signal) { p.Kill() } //nolint:errcheck

func waitGroupGone(int, time.Duration) {}
