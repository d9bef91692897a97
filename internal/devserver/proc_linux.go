package devserver

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// sysProcAttr puts a child in its own process group, and has the kernel
// kill it should metro dev itself be killed with SIGKILL (no chance to
// clean up otherwise).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// groupAlive reports whether group pgid has a member left that is not a
// zombie. Zombies count as gone: they have exited, and the orphans among
// them wait for PID 1 to reap them, which in a container may be never.
func groupAlive(pgid int) bool {
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	members, err := liveGroupMembers(pgid)
	if err != nil {
		return true // no /proc: trust kill
	}
	return len(members) > 0
}

// liveGroupMembers lists the processes of group pgid that are not zombies,
// from /proc.
func liveGroupMembers(pgid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	want := []byte(strconv.Itoa(pgid))
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// After "pid (comm) ": state ppid pgrp ...; comm may hold spaces.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) > 2 && bytes.Equal(f[2], want) && f[0][0] != 'Z' {
			out = append(out, pid)
		}
	}
	return out, nil
}
