package devserver

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/devstate"
)

// The project the end-to-end test runs, and the handler it edits.
const (
	e2eProject = "testdata/proj"
	e2eHandler = "workers/hello/handler.go"
	e2eWorker  = "hello"
	e2ePath    = "/hello"
)

// TestDevEndToEnd runs metro dev on a copy of a project and goes through
// a developer's session: requests, a reload under load, a syntax error, a
// worker killed with -9, and Ctrl-C. The steps share one session because
// each Go build costs seconds.
func TestDevEndToEnd(t *testing.T) {
	dir := copyProject(t, e2eProject)
	handler := filepath.Join(dir, e2eHandler)
	src, err := os.ReadFile(handler)
	if err != nil {
		t.Fatal(err)
	}
	d := startDev(t, dir, "DEVSERVER_TEST_GRACE=5s")
	st := d.state(t, 2*time.Minute)
	d.waitOutput(t, "metro dev ready in", time.Second)
	url := st.GatewayURL + e2ePath
	client := &http.Client{Timeout: 10 * time.Second}
	ctx := t.Context()
	body := func(t *testing.T) string {
		t.Helper()
		code, b, err := get(ctx, client, url)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET %s: %d %q %v", url, code, b, err)
		}
		return b
	}
	edit := func(t *testing.T, from, to string) {
		t.Helper()
		b, err := os.ReadFile(handler)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), from) {
			t.Fatalf("%s does not hold %q", handler, from)
		}
		if err := os.WriteFile(handler, []byte(strings.Replace(string(b), from, to, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pids := map[int]bool{st.PID: true}
	for _, p := range st.Workers[e2eWorker] {
		pids[p] = true
	}

	if !t.Run("requests answer", func(t *testing.T) {
		// The gateway learns routes a moment after the banner.
		waitFor(t, "the first answer", 10*time.Second, func() bool {
			code, _, err := get(ctx, client, url)
			return err == nil && code == http.StatusOK
		})
		if got := body(t); got != "hello v1\n" {
			t.Fatalf("body = %q, want %q", got, "hello v1\n")
		}
	}) {
		return
	}

	if !t.Run("reload under load fails no request", func(t *testing.T) {
		var (
			mu       sync.Mutex
			failures []string
			seen     = map[string]int{}
			stop     atomic.Bool
			wg       sync.WaitGroup
		)
		for range 2 {
			wg.Go(func() {
				for !stop.Load() {
					code, b, err := get(ctx, client, url)
					mu.Lock()
					if err != nil || code != http.StatusOK {
						failures = append(failures, strings.TrimSpace(b)+" "+http.StatusText(code)+" "+errString(err))
					} else {
						seen[b]++
					}
					mu.Unlock()
				}
			})
		}
		edit(t, "hello v1", "hello v2")
		d.waitOutput(t, "reloaded "+e2eWorker+" in ", 2*time.Minute)
		waitFor(t, "the new answer", 10*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return seen["hello v2\n"] > 0
		})
		// Keep going while the old process drains and exits.
		d.waitOutput(t, "worker stopped", 10*time.Second)
		stop.Store(true)
		wg.Wait()
		if len(failures) > 0 {
			t.Errorf("%d failed requests during the reload, first: %s", len(failures), failures[0])
		}
		if seen["hello v1\n"] == 0 {
			t.Errorf("the loop never saw the old answer: seen %v", seen)
		}
		t.Logf("answers during the reload: %v", seen)
	}) {
		return
	}

	if !t.Run("syntax error keeps the old code serving", func(t *testing.T) {
		edit(t, "hello v2", "hello v3\n\tfunc(")
		d.waitOutput(t, "build failed; the running version keeps serving", 2*time.Minute)
		d.waitOutput(t, "syntax error", time.Second)
		if got := body(t); got != "hello v2\n" {
			t.Fatalf("body = %q, want the old %q", got, "hello v2\n")
		}
		if err := os.WriteFile(handler, []byte(strings.Replace(string(src), "hello v1", "hello v3", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the fixed code", 2*time.Minute, func() bool { return body(t) == "hello v3\n" })
		// The new process may answer a moment before metro dev has seen
		// it announce itself and retired the old one.
		d.waitCount(t, "reloaded "+e2eWorker+" in ", 2, 30*time.Second)
	}) {
		return
	}

	if !t.Run("kill -9 restarts the worker", func(t *testing.T) {
		before := d.state(t, time.Second).Workers[e2eWorker]
		if len(before) != 1 {
			t.Fatalf("worker pids = %v, want one", before)
		}
		if err := syscall.Kill(before[0], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		d.waitOutput(t, "exited (signal: killed)", 10*time.Second)
		var after []int
		waitFor(t, "a new pid in dev.json", 30*time.Second, func() bool {
			after = d.state(t, time.Second).Workers[e2eWorker]
			return len(after) == 1 && after[0] != before[0]
		})
		pids[after[0]] = true
		waitFor(t, "answers after the restart", 30*time.Second, func() bool {
			code, b, err := get(ctx, client, url)
			return err == nil && code == http.StatusOK && b == "hello v3\n"
		})
	}) {
		return
	}

	t.Run("SIGINT exits 0 and leaves no process", func(t *testing.T) {
		for _, p := range d.state(t, time.Second).Workers[e2eWorker] {
			pids[p] = true
		}
		if code := d.interrupt(t, 30*time.Second); code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
		for p := range pids {
			if alive(p) {
				t.Errorf("pid %d still running", p)
			}
			if m := groupMembers(p); len(m) > 0 {
				t.Errorf("process group %d still has %v", p, m)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, devstate.RelPath)); !os.IsNotExist(err) {
			t.Errorf("%s not removed: %v", devstate.RelPath, err)
		}
		if !strings.Contains(d.out.String(), "dev     | stopped") {
			t.Errorf("no stop message in:\n%s", d.out.String())
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestDevKillsWorkerIgnoringTERM: a worker (and its children) that ignore
// SIGTERM are killed after the grace period, or at once on a second
// SIGINT, and metro dev still exits 0 leaving no process behind.
func TestDevKillsWorkerIgnoringTERM(t *testing.T) {
	tests := []struct {
		name    string
		grace   string
		signals int
	}{
		{"grace period runs out", "300ms", 1},
		// The grace is far longer than the wait for the exit below: only
		// the second signal can end it in time.
		{"second SIGINT forces", "10m", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeProject(t, map[string]string{
				"metro.yaml": `name: stubborn
gateway:
  listen: "127.0.0.1:0"
  admin: ""
nats:
  port: 0
workers:
  stubborn:
    run: trap "" TERM; echo started; sleep 1000 & sleep 1000
`,
			})
			d := startDev(t, dir, "DEVSERVER_TEST_GRACE="+tt.grace, "DEVSERVER_TEST_READY=200ms")
			st := d.state(t, time.Minute)
			d.waitOutput(t, "stubborn | started", 10*time.Second)
			leaders := st.Workers["stubborn"]
			if len(leaders) != 1 {
				t.Fatalf("worker pids = %v", leaders)
			}
			var members []int
			waitFor(t, "the shell and both sleeps", 10*time.Second, func() bool {
				members = groupMembers(leaders[0])
				return len(members) == 3
			})
			if tt.signals == 2 {
				if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
				d.waitOutput(t, "stopping (Ctrl-C again to force)", 10*time.Second)
			}
			if code := d.interrupt(t, 30*time.Second); code != 0 {
				t.Errorf("exit code %d, want 0", code)
			}
			for _, p := range members {
				if alive(p) {
					t.Errorf("pid %d (group %d) survived", p, leaders[0])
				}
			}
			if tt.signals == 2 && !strings.Contains(d.out.String(), "dev      | forcing") {
				t.Errorf("no forcing message:\n%s", d.out.String())
			}
			if !strings.Contains(d.out.String(), "announced no service named \"stubborn\"") {
				t.Errorf("the banner does not say the worker announced no service:\n%s", d.out.String())
			}
		})
	}
}

// TestDevReloadsRunWorker: a run: worker with watch globs is replaced,
// every replica, when a matching file changes, and only then.
func TestDevReloadsRunWorker(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"metro.yaml": `name: runner
gateway:
  listen: "127.0.0.1:0"
  admin: ""
nats:
  port: 0
workers:
  sleepy:
    run: echo "up $(cat conf/value.txt)"; exec sleep 1000
    replicas: 2
    watch: ["conf/*.txt"]
`,
		"conf/value.txt": "one",
		"conf/notes.md":  "not watched",
	})
	d := startDev(t, dir, "DEVSERVER_TEST_GRACE=2s", "DEVSERVER_TEST_READY=200ms")
	st := d.state(t, time.Minute)
	d.waitOutput(t, "sleepy.1 | up one", 10*time.Second)
	d.waitOutput(t, "sleepy.2 | up one", 10*time.Second)
	before := st.Workers["sleepy"]
	if len(before) != 2 {
		t.Fatalf("pids = %v, want 2 replicas", before)
	}
	if err := os.WriteFile(filepath.Join(dir, "conf", "notes.md"), []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conf", "value.txt"), []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitOutput(t, "sleepy.1 | up two", 30*time.Second)
	d.waitOutput(t, "sleepy.2 | up two", 10*time.Second)
	d.waitOutput(t, "reloaded sleepy in ", 10*time.Second)
	if n := strings.Count(d.out.String(), "reloaded sleepy in "); n != 1 {
		t.Errorf("%d reloads, want 1 (notes.md is not watched):\n%s", n, d.out.String())
	}
	var after []int
	waitFor(t, "new pids in dev.json", 10*time.Second, func() bool {
		after = d.state(t, time.Second).Workers["sleepy"]
		return len(after) == 2 && !slices.Contains(after, before[0]) && !slices.Contains(after, before[1])
	})
	waitFor(t, "the old replicas to be gone", 10*time.Second, func() bool { return !alive(before[0]) && !alive(before[1]) })
	if code := d.interrupt(t, 30*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	for _, p := range after {
		if alive(p) {
			t.Errorf("pid %d survived", p)
		}
	}
}

// TestDevCrashLoop: a worker that keeps exiting is restarted with backoff
// and reported as crash-looping, while the others keep running.
func TestDevCrashLoop(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"metro.yaml": `name: crashy
gateway:
  listen: "127.0.0.1:0"
  admin: ""
nats:
  port: 0
workers:
  crashy:
    run: echo boom; exit 3
  steady:
    run: exec sleep 1000
`,
	})
	d := startDev(t, dir, "DEVSERVER_TEST_GRACE=1s", "DEVSERVER_TEST_READY=200ms")
	st := d.state(t, time.Minute)
	d.waitOutput(t, "crashy is crash-looping: 3 exits in a row", 30*time.Second)
	out := d.out.String()
	for _, want := range []string{
		"crashy  | boom",
		"crashy exited (exit status 3) after ",
		"restarting in 200ms",
		"restarting in 400ms",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	steady := st.Workers["steady"]
	if len(steady) != 1 || !alive(steady[0]) {
		t.Fatalf("steady pids %v not running", steady)
	}
	if now := d.state(t, time.Second).Workers["steady"]; !slices.Equal(now, steady) {
		t.Errorf("steady was restarted: %v -> %v", steady, now)
	}
	if code := d.interrupt(t, 30*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if alive(steady[0]) {
		t.Errorf("steady pid %d survived", steady[0])
	}
}
