package devserver

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Restart backoff of a crashing worker: the first restart comes quickly
// (a kill -9 is over in a blink), repeated crashes slow down to the cap.
const (
	backoffBase = 200 * time.Millisecond
	backoffCap  = 10 * time.Second
	// stableAfter is how long a process must run for its exit to count as
	// a fresh crash rather than one more of a loop.
	stableAfter = 10 * time.Second
	// crashLoopAt is the number of quick exits in a row reported as a loop.
	crashLoopAt = 3
)

// workerSpec is one worker of metro.yaml, resolved.
type workerSpec struct {
	name     string
	replicas int
	pkg      string // directory of the Go main package; "" for run:
	run      string // shell command of a run: worker
	dir      string // working directory of its processes
	bin      string // where its Go binary is built
	env      []string
	watch    watchSet

	// command is the argv of a worker metro runs itself (mock:).
	command []string
	project string // the project directory, against which paths are shown
}

// rel shows p relative to the project.
func (s workerSpec) rel(p string) string {
	if r, err := filepath.Rel(s.project, p); err == nil && r != ".." && !strings.HasPrefix(r, "../") {
		return r
	}
	return p
}

// dirMissing says that a worker's directory is gone, rather than leaving
// the failure to go build or exec ("fork/exec go: no such file").
func (s workerSpec) dirMissing(dir string) error {
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("directory %s is missing (renamed or deleted?); metro dev is watching for it and reloads the worker when it is back", s.rel(dir))
}

// procName names replica i (from 0) in the output.
func (s workerSpec) procName(i int) string {
	if s.replicas == 1 {
		return s.name
	}
	return s.name + "." + strconv.Itoa(i+1)
}

func (s workerSpec) argv() []string {
	if len(s.command) > 0 {
		return s.command
	}
	if s.pkg != "" {
		return []string{s.bin}
	}
	return []string{"sh", "-c", s.run}
}

// slot is one replica position: the process in it and its crash history.
type slot struct {
	p     *proc
	fails int // quick exits in a row
}

// restartReq asks the loop to restart the process of a slot, unless
// something else replaced that process meanwhile.
type restartReq struct {
	slot int
	p    *proc
}

// runner supervises one worker: it builds it, runs its replicas, restarts
// them when they crash and replaces them, without downtime, when their
// sources change. Its loop owns all of that state; pids is the only
// thing read from outside.
type runner struct {
	spec    workerSpec
	con     *console
	ping    pinger
	grace   time.Duration
	quiet   time.Duration
	force   <-chan struct{}
	changed func() // the set of running pids changed

	// registers is false for a worker that never announced a service
	// (a plain NATS subscriber): reloads then do not wait for one.
	registers atomic.Bool

	mu    sync.Mutex
	slots []slot

	state   atomic.Value  // string: "building", "build failed", "running"
	started chan struct{} // closed once the first build is done (or failed) and processes started

	binHash [sha256.Size]byte
	bg      sync.WaitGroup
}

func newRunner(spec workerSpec, con *console, ping pinger, grace, quiet time.Duration, force <-chan struct{}, changed func()) *runner {
	r := &runner{spec: spec, con: con, ping: ping, grace: grace, quiet: quiet, force: force, changed: changed,
		slots: make([]slot, spec.replicas), started: make(chan struct{})}
	r.registers.Store(true)
	r.state.Store("building")
	return r
}

// pids returns the pids of the running replicas.
func (r *runner) pids() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, s := range r.slots {
		if s.p != nil && !isDone(s.p.done) {
			out = append(out, s.p.pid())
		}
	}
	return out
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// run supervises the worker until ctx ends, then stops its processes
// (SIGTERM, SIGKILL after the grace period) and returns once all are reaped.
func (r *runner) run(ctx context.Context) {
	changes := make(chan time.Time, 1)
	exits := make(chan *proc)
	restarts := make(chan restartReq)
	defer func() {
		r.stopAll()
		r.bg.Wait()
	}()
	if r.spec.pkg != "" {
		// A Go worker also changes with the packages it imports from its
		// module, and with the module's requirements.
		root, dirs, err := localDeps(ctx, r.spec.pkg, ".")
		if err != nil {
			r.con.printf("%s: %v", r.spec.name, err)
		} else if root != "" {
			r.spec.watch.dirs = dirs
			r.spec.watch.files = []string{filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum")}
		}
	}
	w, err := newWatcher(r.spec.watch)
	if err != nil {
		r.con.printf("%s: not watching for changes: %v", r.spec.name, err)
	} else {
		w.onMissing = func(dir string, gone bool) {
			if gone {
				r.con.printf("%s: %s is gone (renamed or deleted); the running version keeps serving, and metro dev reloads it when it is back", r.spec.name, r.spec.rel(dir))
			} else {
				r.con.printf("%s: %s is back", r.spec.name, r.spec.rel(dir))
			}
		}
		r.bg.Go(func() {
			w.run(ctx, r.quiet, changes, func(err error) { r.con.printf("%s: watching files: %v", r.spec.name, err) })
		})
	}

	if h, err := r.build(ctx); err != nil {
		r.buildFailed(err)
	} else if err := r.promote(h); err != nil {
		r.buildFailed(err)
	} else {
		r.startAll(ctx, exits)
	}
	close(r.started)

	var (
		b     *pendingBuild // the build in progress, if any
		since time.Time     // first change not yet serving
	)
	defer func() {
		if b != nil {
			b.cancel()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-changes:
			if since.IsZero() {
				since = t
			}
			if b != nil {
				// A newer change makes the running build stale.
				b.cancel()
				<-b.done
			}
			b = r.startBuild(ctx, r.binHash)
		case res := <-b.doneChan():
			b.cancel()
			b = nil
			if res.err != nil {
				r.buildFailed(res.err)
				since = time.Time{}
				continue
			}
			if res.same && r.allRunning() {
				os.Remove(r.nextBin()) //nolint:errcheck // rebuilt next time anyway
				r.con.printf("%s: binary unchanged, kept running", r.spec.name)
				since = time.Time{}
				continue
			}
			r.swap(ctx, since, res, exits)
			since = time.Time{}
		case p := <-exits:
			r.exited(ctx, p, restarts)
		case req := <-restarts:
			r.restart(ctx, req, exits, restarts)
		}
	}
}

// pendingBuild is a build in progress.
type pendingBuild struct {
	cancel context.CancelFunc
	done   chan buildResult
}

// doneChan is nil (blocks forever in a select) when there is no build.
func (b *pendingBuild) doneChan() <-chan buildResult {
	if b == nil {
		return nil
	}
	return b.done
}

func (r *runner) startBuild(ctx context.Context, current [sha256.Size]byte) *pendingBuild {
	bctx, cancel := context.WithCancel(ctx)
	b := &pendingBuild{cancel: cancel, done: make(chan buildResult, 1)}
	r.bg.Go(func() { b.done <- r.prepare(bctx, current) })
	return b
}

// buildResult is what a reload needs once its build is done.
type buildResult struct {
	err   error
	same  bool            // the binary did not change
	known map[string]bool // service instances running before the new processes
	took  time.Duration   // of the build
	hash  [sha256.Size]byte
}

// prepare builds the worker and, meanwhile, notes which instances of its
// service are running now: whatever answers later and is not among them
// is a process of the new generation.
func (r *runner) prepare(ctx context.Context, current [sha256.Size]byte) buildResult {
	var known map[string]bool
	var wg sync.WaitGroup
	if r.registers.Load() {
		wg.Go(func() { known, _ = r.ping.ids(ctx, r.spec.name, 150*time.Millisecond) })
	}
	began := time.Now()
	h, err := r.build(ctx)
	took := time.Since(began)
	wg.Wait()
	if ctx.Err() != nil && err == nil {
		err = ctx.Err()
	}
	return buildResult{err: err, same: r.spec.pkg != "" && err == nil && h == current, known: known, took: took, hash: h}
}

// nextBin is where a Go worker is built. The binary at spec.bin stays the
// one that restarts run until the new one has proved itself in a reload:
// a build that crashes at start never replaces a working one.
func (r *runner) nextBin() string { return r.spec.bin + ".next" }

// build compiles a Go worker into nextBin (nothing to do for run:
// workers) and returns the binary's hash.
func (r *runner) build(ctx context.Context) ([sha256.Size]byte, error) {
	if r.spec.pkg == "" {
		return [sha256.Size]byte{}, nil
	}
	r.state.Store("building")
	if err := r.spec.dirMissing(r.spec.pkg); err != nil {
		return [sha256.Size]byte{}, err
	}
	if err := goBuild(ctx, r.spec.name, r.spec.pkg, ".", r.nextBin()); err != nil {
		return [sha256.Size]byte{}, err
	}
	h, err := hashFile(r.nextBin())
	if err != nil {
		return h, fmt.Errorf("building %s: %w", r.spec.name, err)
	}
	return h, nil
}

// promote makes the binary in nextBin the current one.
func (r *runner) promote(hash [sha256.Size]byte) error {
	if r.spec.pkg == "" {
		return nil
	}
	if err := os.Rename(r.nextBin(), r.spec.bin); err != nil {
		return fmt.Errorf("installing the new %s binary: %w", r.spec.name, err)
	}
	r.binHash = hash
	return nil
}

func hashFile(p string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := os.Open(p)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

func (r *runner) buildFailed(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	r.state.Store("build failed")
	var be *BuildError
	if errors.As(err, &be) {
		r.con.lines(r.spec.name, "build failed; the running version keeps serving:\n"+be.Output)
		return
	}
	r.con.printf("%s: %v", r.spec.name, err)
}

// crashing reports whether a replica exited unexpectedly and has not
// run long enough since to count as recovered.
func (r *runner) crashing() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.slots {
		if s.fails > 0 {
			return true
		}
	}
	return false
}

func (r *runner) allRunning() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.slots {
		if s.p == nil || isDone(s.p.done) {
			return false
		}
	}
	return true
}

// startAll starts every replica without waiting for it: the first start.
func (r *runner) startAll(ctx context.Context, exits chan<- *proc) {
	for i := range r.slots {
		p, err := r.start(i, "")
		if err != nil {
			r.con.printf("%v", err)
			continue
		}
		r.mu.Lock()
		r.slots[i].p = p
		r.mu.Unlock()
		r.watchExit(ctx, p, exits)
	}
	r.state.Store("running")
	r.changed()
}

// start starts replica i, from bin instead of the current binary when
// bin is not "".
func (r *runner) start(i int, bin string) (*proc, error) {
	argv := r.spec.argv()
	if bin != "" {
		argv = []string{bin}
	}
	if err := r.spec.dirMissing(r.spec.dir); err != nil {
		return nil, fmt.Errorf("starting %s: %w", r.spec.procName(i), err)
	}
	return startProc(r.con, procSpec{name: r.spec.procName(i), argv: argv, dir: r.spec.dir, env: r.spec.env})
}

// watchExit hands p to the loop when it exits.
func (r *runner) watchExit(ctx context.Context, p *proc, exits chan<- *proc) {
	r.bg.Go(func() {
		select {
		case <-p.done:
		case <-ctx.Done():
			return
		}
		select {
		case exits <- p:
		case <-ctx.Done():
		}
	})
}

// swap replaces every replica with a new process: the new ones start,
// and only once they have all announced their service are the old ones
// told to drain. If a new one dies first or never announces itself, the
// old ones keep serving.
func (r *runner) swap(ctx context.Context, since time.Time, res buildResult, exits chan<- *proc) {
	n := len(r.slots)
	fresh := make([]*proc, 0, n)
	abort := make(chan struct{})
	var abortOnce sync.Once
	var watchers sync.WaitGroup
	stopFresh := func() {
		for _, p := range fresh {
			p.stop(r.grace, r.force)
		}
		watchers.Wait()
	}
	next := ""
	if r.spec.pkg != "" {
		next = r.nextBin()
	}
	for i := range n {
		p, err := r.start(i, next)
		if err != nil {
			r.con.printf("%v; the running version keeps serving", err)
			stopFresh()
			return
		}
		fresh = append(fresh, p)
		watchers.Go(func() {
			select {
			case <-p.done:
				abortOnce.Do(func() { close(abort) })
			case <-abort:
			}
		})
	}
	if r.registers.Load() {
		wctx, cancel := context.WithTimeout(ctx, swapTimeout)
		_, err := r.ping.waitNew(wctx, r.spec.name, res.known, n, abort)
		cancel()
		if err != nil {
			abortOnce.Do(func() { close(abort) })
			switch {
			case ctx.Err() != nil:
			case anyDone(fresh):
				r.con.printf("%s: the new version exited before it was ready; the running version keeps serving", r.spec.name)
			default:
				r.con.printf("%s: the new version did not announce service %q within %s; the running version keeps serving", r.spec.name, r.spec.name, swapTimeout)
			}
			stopFresh()
			return
		}
	}
	abortOnce.Do(func() { close(abort) })
	watchers.Wait()
	if err := r.promote(res.hash); err != nil {
		r.con.printf("%v", err)
	}

	r.mu.Lock()
	old := make([]*proc, 0, n)
	for i := range r.slots {
		if r.slots[i].p != nil {
			old = append(old, r.slots[i].p)
		}
		r.slots[i] = slot{p: fresh[i]}
	}
	r.mu.Unlock()
	for _, p := range fresh {
		r.watchExit(ctx, p, exits)
	}
	for _, p := range old {
		// The old process drains in-flight requests after SIGTERM; the
		// loop need not wait for it.
		r.bg.Go(func() { p.stop(r.grace, r.force) })
	}
	r.state.Store("running")
	r.changed()
	verb := "reloaded"
	if len(old) == 0 {
		verb = "started"
	}
	detail := ""
	if r.spec.pkg != "" {
		detail = " (build " + fmtDuration(res.took) + ")"
	}
	r.con.printf("%s %s in %s%s", verb, r.spec.name, fmtDuration(time.Since(since)), detail)
}

// swapTimeout bounds the wait for a new process to announce itself.
var swapTimeout = 30 * time.Second

func anyDone(ps []*proc) bool {
	for _, p := range ps {
		if isDone(p.done) {
			return true
		}
	}
	return false
}

// exited handles the unexpected exit of a current process: report it and
// schedule a restart with backoff.
func (r *runner) exited(ctx context.Context, p *proc, restarts chan<- restartReq) {
	if p.expected() {
		return
	}
	r.mu.Lock()
	i := -1
	for j, s := range r.slots {
		if s.p == p {
			i = j
		}
	}
	if i < 0 {
		r.mu.Unlock()
		return // an old generation's process
	}
	s := &r.slots[i]
	lived := time.Since(p.started)
	if lived >= stableAfter {
		s.fails = 0
	}
	delay := min(backoffBase<<min(s.fails, 10), backoffCap)
	s.fails++
	fails := s.fails
	r.mu.Unlock()
	r.changed()

	name := p.spec.name
	r.con.printf("%s exited (%s) after %s; restarting in %s", name, p.exitStatus(), fmtDuration(lived), fmtDuration(delay))
	if fails == crashLoopAt {
		r.con.printf("%s is crash-looping: %d exits in a row, each within %s of starting; retrying with backoff up to %s, the other workers keep running; fix and save to rebuild", name, fails, stableAfter, backoffCap)
	}
	r.bg.Go(func() {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		select {
		case restarts <- restartReq{slot: i, p: p}:
		case <-ctx.Done():
		}
	})
}

// restart starts a new process in a slot whose process died, unless a
// reload has replaced it since.
func (r *runner) restart(ctx context.Context, req restartReq, exits chan<- *proc, restarts chan<- restartReq) {
	r.mu.Lock()
	current := r.slots[req.slot].p == req.p
	r.mu.Unlock()
	if !current {
		return
	}
	p, err := r.start(req.slot, "")
	if err != nil {
		r.con.printf("%v", err)
		// Leave the dead process in the slot and try again later.
		r.exited(ctx, req.p, restarts)
		return
	}
	r.mu.Lock()
	fails := r.slots[req.slot].fails
	r.slots[req.slot] = slot{p: p, fails: fails}
	r.mu.Unlock()
	r.watchExit(ctx, p, exits)
	r.changed()
}

// stopAll stops every current process at once and waits for them.
func (r *runner) stopAll() {
	r.mu.Lock()
	ps := make([]*proc, 0, len(r.slots))
	for _, s := range r.slots {
		if s.p != nil {
			ps = append(ps, s.p)
		}
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() { p.stop(r.grace, r.force) })
	}
	wg.Wait()
}

// fmtDuration prints 1.23s, 250ms: short and stable.
func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
	case d >= time.Millisecond:
		return strconv.Itoa(int(d.Milliseconds())) + "ms"
	default:
		return d.Round(10 * time.Microsecond).String()
	}
}
