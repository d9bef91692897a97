package devstate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockRelPath is the lock a running metro dev holds, relative to the
// project directory: two in one project would overwrite each other's
// dev.json, delete it on exit while the other runs, and share .metro/bin.
const LockRelPath = ".metro/dev.lock"

// ErrLocked is returned by Lock when another metro dev holds the lock.
var ErrLocked = errors.New("another metro dev is running in this project")

// LockedError says who holds the lock.
type LockedError struct {
	Dir string
	PID int // 0 when the holder did not write one
}

func (e *LockedError) Error() string {
	who := "another metro dev"
	if e.PID > 0 {
		who += " (pid " + strconv.Itoa(e.PID) + ")"
	}
	return fmt.Sprintf("%s is running in %s; stop it first, or work in another directory", who, e.Dir)
}

func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Lock takes the project's metro dev lock and writes this process's pid
// into it; release gives it up. The lock is an OS file lock (flock), so it
// ends with the process however that ends: a crashed metro dev leaves no
// lock behind.
func Lock(projectDir string) (release func(), err error) {
	p := filepath.Join(projectDir, LockRelPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("locking %s: %w", p, err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", p, err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", p, err)
	}
	if !held {
		b, _ := os.ReadFile(p)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		f.Close()
		return nil, &LockedError{Dir: projectDir, PID: pid}
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0) //nolint:errcheck // the pid is only for the message
	}
	return func() {
		// The file stays: removing it would let a third metro dev lock a
		// new file while a second still waits on the old one.
		f.Truncate(0) //nolint:errcheck
		unlock(f)
		f.Close()
	}, nil
}
