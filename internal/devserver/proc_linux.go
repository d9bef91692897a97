package devserver

import "syscall"

// sysProcAttr puts a child in its own process group, and has the kernel
// kill it should metro dev itself be killed with SIGKILL (no chance to
// clean up otherwise).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
