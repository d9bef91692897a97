package devserver

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// procSpec says how to start one process.
type procSpec struct {
	name string   // shown in the output prefix, e.g. "catalog" or "catalog.2"
	argv []string // argv[0] is looked up in PATH
	dir  string
	env  []string // appended to the environment of metro dev itself
}

// proc is one running child process, the leader of its own process group
// so that it and everything it starts can be signalled together. Its
// terminal does not send it Ctrl-C either: metro dev decides the order in
// which things stop.
type proc struct {
	spec    procSpec
	cmd     *exec.Cmd
	started time.Time
	out     *lineWriter

	done  chan struct{} // closed once the leader is reaped and its group killed
	state *os.ProcessState
	err   error // from Wait, when it failed without a state

	stopOnce sync.Once
	stopping chan struct{} // closed when stop was asked: the exit is expected
	copied   chan struct{} // closed when the output pipe reached EOF
}

// startProc starts spec with its output going to c, line by line.
func startProc(c *console, spec procSpec) (*proc, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", spec.name, err)
	}
	cmd := exec.Command(spec.argv[0], spec.argv[1:]...)
	cmd.Dir = spec.dir
	cmd.Env = append(os.Environ(), spec.env...)
	// An *os.File as output means no copying goroutine inside os/exec, so
	// Wait returns when the leader exits even if a grandchild still holds
	// the pipe; we read the pipe ourselves.
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("starting %s: %w", spec.name, err)
	}
	w.Close()
	p := &proc{
		spec:     spec,
		cmd:      cmd,
		started:  time.Now(),
		out:      c.writer(spec.name),
		done:     make(chan struct{}),
		stopping: make(chan struct{}),
		copied:   make(chan struct{}),
	}
	go func() {
		defer close(p.copied)
		io.Copy(p.out, r) //nolint:errcheck // ends at EOF or when r is closed below
		p.out.Flush()
	}()
	go func() {
		err := cmd.Wait()
		p.state = cmd.ProcessState
		if p.state == nil {
			p.err = err
		}
		// Whatever the leader left behind in its group goes with it: a
		// worker's children must not outlive it.
		killGroup(cmd.Process, syscall.SIGKILL)
		waitGroupGone(cmd.Process.Pid, 2*time.Second)
		select {
		case <-p.copied:
		case <-time.After(2 * time.Second):
			// Someone outside the group (a daemon that called setsid)
			// holds the pipe; stop waiting for it.
		}
		r.Close()
		<-p.copied
		close(p.done)
	}()
	return p, nil
}

// pid returns the process id of the group leader.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// expected reports whether the process was asked to stop.
func (p *proc) expected() bool {
	select {
	case <-p.stopping:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, waits up to grace for the
// leader to exit, then kills the group. It returns once the process is
// reaped. force, when closed, cuts the grace short.
func (p *proc) stop(grace time.Duration, force <-chan struct{}) {
	p.stopOnce.Do(func() { close(p.stopping) })
	select {
	case <-p.done:
		return
	default:
	}
	killGroup(p.cmd.Process, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return
	case <-t.C:
	case <-force:
	}
	killGroup(p.cmd.Process, syscall.SIGKILL)
	<-p.done
}

// exitStatus says how the process ended, for messages.
func (p *proc) exitStatus() string {
	if p.state == nil {
		if p.err != nil {
			return p.err.Error()
		}
		return "unknown status"
	}
	return p.state.String() // "exit status 2", "signal: killed"
}
