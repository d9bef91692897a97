package devserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/devstate"
	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
)

// The project the end-to-end test runs, and the handler it edits: the
// catalog worker's handlers live in a package of their own, which metro
// dev must watch because the worker imports it.
const (
	e2eProject = "../../examples/shop"
	e2eHandler = "catalog/catalog.go"
	e2eWorker  = "catalog"
	e2ePath    = "/products/apple"
)

// product is the part of the catalog's answer the test looks at.
type product struct {
	Name string `json:"name"`
}

// TestDevEndToEnd runs metro dev on a copy of examples/shop and goes
// through a developer's session: requests, a reload under load, a syntax
// error, a worker killed with -9, and Ctrl-C. The steps share one session
// because each Go build costs seconds.
func TestDevEndToEnd(t *testing.T) {
	t.Parallel()
	dir := copyProject(t, e2eProject)
	handler := filepath.Join(dir, e2eHandler)
	src, err := os.ReadFile(handler)
	if err != nil {
		t.Fatal(err)
	}
	// The example's fixed ports may be taken; the overrides are the ones
	// a user has: flags and METRO_* variables.
	d := startDev(t, dir, "DEVSERVER_TEST_GRACE=5s", "DEVSERVER_TEST_NATS_PORT=0",
		"METRO_LISTEN=127.0.0.1:0", "METRO_ADMIN=127.0.0.1:0")
	st := d.state(t, 3*time.Minute)
	d.waitOutput(t, "metro dev ready in", time.Second)
	url := st.GatewayURL + e2ePath
	client := &http.Client{Timeout: 10 * time.Second}
	ctx := t.Context()
	name := func(t *testing.T) string {
		t.Helper()
		code, b, err := get(ctx, client, url)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET %s: %d %q %v", url, code, b, err)
		}
		var p product
		if err := json.Unmarshal([]byte(b), &p); err != nil {
			t.Fatalf("GET %s: %q: %v", url, b, err)
		}
		return p.Name
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
	pids := map[int]bool{}
	for _, ps := range st.Workers {
		for _, p := range ps {
			pids[p] = true
		}
	}

	if !t.Run("requests answer", func(t *testing.T) {
		if len(st.Workers["catalog"]) != 2 || len(st.Workers["orders"]) != 1 {
			t.Errorf("workers in dev.json = %v, want 2 catalog and 1 orders", st.Workers)
		}
		// No waiting: once the banner is out, requests are answered.
		if got := name(t); got != "Apple" {
			t.Fatalf("name = %q, want Apple", got)
		}
		code, b, err := get(ctx, client, st.GatewayURL+"/orders")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET /orders: %d %q %v", code, b, err)
		}
		for _, want := range []string{"GET     /products/{id}  catalog  2", "POST    /orders         orders   1"} {
			if !strings.Contains(d.out.String(), want) {
				t.Errorf("banner lacks %q:\n%s", want, d.out.String())
			}
		}
	}) {
		return
	}

	// The feed stays open for the rest of the session: the stop must
	// end it, not wait for its route's timeout.
	var feed *metrotest.Events
	if !t.Run("the order feed streams each order as it is placed", func(t *testing.T) {
		feed = testOrderFeed(ctx, t, dir, st)
	}) {
		return
	}

	if !t.Run("the bus is locked and the tools still work", func(t *testing.T) {
		testLockedBus(t, dir, st)
		// Nothing metro dev runs is refused: workers announce themselves,
		// the gateway follows them, and orders' Transport follows
		// discovery to call the catalog.
		if out := d.out.String(); strings.Contains(strings.ToLower(out), "permissions violation") {
			t.Errorf("metro dev's processes were refused on the bus:\n%s", out)
		}
	}) {
		return
	}

	if !t.Run("an edit that leaves the binary alone restarts nothing", func(t *testing.T) {
		before := d.state(t, time.Second).Workers[e2eWorker]
		edit(t, "// Products is the catalog's stock.", "// Products is the catalog's stock, edited.")
		d.waitOutput(t, "catalog: binary unchanged, kept running", 2*time.Minute)
		if after := d.state(t, time.Second).Workers[e2eWorker]; !slices.Equal(before, after) {
			t.Errorf("pids changed from %v to %v", before, after)
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
					var p product
					mu.Lock()
					if err != nil || code != http.StatusOK || json.Unmarshal([]byte(b), &p) != nil {
						failures = append(failures, fmt.Sprintf("%d %q %v", code, b, err))
					} else {
						seen[p.Name]++
					}
					mu.Unlock()
				}
			})
		}
		edit(t, `"Apple"`, `"Apple v2"`)
		d.waitOutput(t, "reloaded "+e2eWorker+" in ", 2*time.Minute)
		metrotest.WaitFor(t, "the new answer", 10*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return seen["Apple v2"] > 0
		})
		// Keep going while both old replicas drain and exit.
		d.waitCount(t, "worker stopped", 2, 20*time.Second)
		stop.Store(true)
		wg.Wait()
		if len(failures) > 0 {
			t.Errorf("%d failed requests during the reload, first: %s", len(failures), failures[0])
		}
		if seen["Apple"] == 0 {
			t.Errorf("the loop never saw the old answer: seen %v", seen)
		}
		if strings.Contains(d.out.String(), "reloaded orders") {
			t.Errorf("orders was reloaded, but nothing it imports changed")
		}
		t.Logf("answers during the reload: %v", seen)
	}) {
		return
	}

	if !t.Run("syntax error keeps the old code serving", func(t *testing.T) {
		edit(t, `"Apple v2"`, `"Apple v3",`+"\n\tfunc(")
		d.waitOutput(t, "build failed; the running version keeps serving", 2*time.Minute)
		d.waitOutput(t, "syntax error", time.Second)
		if got := name(t); got != "Apple v2" {
			t.Fatalf("name = %q, want the old %q", got, "Apple v2")
		}
	}) {
		return
	}

	if !t.Run("a new version that dies at start keeps the old one serving", func(t *testing.T) {
		crashing := strings.Replace(string(src), `"Apple"`, `"Apple v3"`, 1) + "\nfunc init() { panic(\"broken at start\") }\n"
		if err := os.WriteFile(handler, []byte(crashing), 0o644); err != nil {
			t.Fatal(err)
		}
		d.waitOutput(t, "catalog: the new version exited before it was ready; the running version keeps serving", 2*time.Minute)
		d.waitOutput(t, "panic: broken at start", time.Second)
		if got := name(t); got != "Apple v2" {
			t.Fatalf("name = %q, want the old %q", got, "Apple v2")
		}
		// A crash of an old replica now restarts the old binary, not the
		// broken one that was built.
		before := d.state(t, time.Second).Workers[e2eWorker]
		if err := syscall.Kill(before[1], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		metrotest.WaitFor(t, "the restarted replica", 30*time.Second, func() bool {
			now := d.state(t, time.Second).Workers[e2eWorker]
			return len(now) == 2 && !slices.Contains(now, before[1])
		})
		// Both replicas serve: a restart from the broken binary would
		// never announce itself.
		nc, err := nats.Connect(st.NATSURL, toolsAuth(t, st)...)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		metrotest.WaitFor(t, "two catalog instances", 30*time.Second, func() bool {
			svcs, err := discovery.Collect(ctx, nc, "", 200*time.Millisecond)
			n := 0
			for _, s := range svcs {
				if s.Name == e2eWorker {
					n++
				}
			}
			return err == nil && n == 2
		})
		for range 10 {
			if got := name(t); got != "Apple v2" {
				t.Fatalf("name = %q after a restart, want the old %q", got, "Apple v2")
			}
		}
	}) {
		return
	}

	if !t.Run("fixing the code reloads it", func(t *testing.T) {
		if err := os.WriteFile(handler, []byte(strings.Replace(string(src), `"Apple"`, `"Apple v3"`, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		metrotest.WaitFor(t, "the fixed code", 2*time.Minute, func() bool { return name(t) == "Apple v3" })
		// A replica may answer a moment before metro dev has seen all of
		// them announce themselves and retired the old ones.
		d.waitCount(t, "reloaded "+e2eWorker+" in ", 2, 30*time.Second)
	}) {
		return
	}

	if !t.Run("kill -9 restarts the worker", func(t *testing.T) {
		before := d.state(t, time.Second).Workers[e2eWorker]
		if len(before) != 2 {
			t.Fatalf("worker pids = %v, want two", before)
		}
		if err := syscall.Kill(before[0], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		d.waitOutput(t, "exited (signal: killed)", 10*time.Second)
		var after []int
		metrotest.WaitFor(t, "a new pid in dev.json", 30*time.Second, func() bool {
			after = d.state(t, time.Second).Workers[e2eWorker]
			return len(after) == 2 && !slices.Contains(after, before[0])
		})
		for _, p := range after {
			pids[p] = true
		}
		// Both replicas answer: enough requests that the queue group
		// spreads them over the two.
		for range 20 {
			if got := name(t); got != "Apple v3" {
				t.Fatalf("name = %q after the restart", got)
			}
		}
	}) {
		return
	}

	t.Run("SIGINT exits 0 and leaves no process", func(t *testing.T) {
		for _, ps := range d.state(t, time.Second).Workers {
			for _, p := range ps {
				pids[p] = true
			}
		}
		if code := d.interrupt(t, 60*time.Second); code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
		// Orders placed since, then the end: whole, not cut off.
		for {
			_, err := feed.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("the order feed ended with %v, want its whole end", err)
				break
			}
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
		if !regexp.MustCompile(`(?m)^dev +\| stopped$`).MatchString(d.out.String()) {
			t.Errorf("no stop message in:\n%s", d.out.String())
		}
	})
}

// TestDevKillsWorkerIgnoringTERM: a worker (and its children) that ignore
// SIGTERM are killed after the grace period, or at once on a second
// SIGINT, and metro dev still exits 0 leaving no process behind.
func TestDevKillsWorkerIgnoringTERM(t *testing.T) {
	t.Parallel()
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
			metrotest.WaitFor(t, "the shell and both sleeps", 10*time.Second, func() bool {
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
	t.Parallel()
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
	metrotest.WaitFor(t, "new pids in dev.json", 10*time.Second, func() bool {
		after = d.state(t, time.Second).Workers["sleepy"]
		return len(after) == 2 && !slices.Contains(after, before[0]) && !slices.Contains(after, before[1])
	})
	metrotest.WaitFor(t, "the old replicas to be gone", 10*time.Second, func() bool { return !alive(before[0]) && !alive(before[1]) })
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
	t.Parallel()
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

// TestDevExternalNATS: with nats.url set, metro dev embeds no server and
// hands that URL to the workers, with the prefix and the worker's env.
func TestDevExternalNATS(t *testing.T) {
	t.Parallel()
	s := natstest.Run(t)
	dir := writeProject(t, map[string]string{
		"metro.yaml": `name: ext
gateway:
  listen: "127.0.0.1:0"
  admin: ""
  prefix: api
nats:
  url: "` + s.ClientURL() + `"
workers:
  env:
    run: echo "url=$NATS_URL prefix=$METRO_PREFIX greeting=$GREETING"; exec sleep 1000
    env: {GREETING: hi}
`,
	})
	d := startDev(t, dir, "DEVSERVER_TEST_GRACE=1s", "DEVSERVER_TEST_READY=200ms")
	st := d.state(t, time.Minute)
	d.waitOutput(t, "env     | url="+s.ClientURL()+" prefix=api greeting=hi", 10*time.Second)
	if st.NATSURL != s.ClientURL() || st.Prefix != "api" {
		t.Errorf("dev.json has nats_url %q prefix %q, want %q and api", st.NATSURL, st.Prefix, s.ClientURL())
	}
	if strings.Contains(d.out.String(), "monitoring") {
		t.Errorf("an embedded server was started:\n%s", d.out.String())
	}
	// A change beyond the gateway's policies (the name) needs a restart.
	yaml, err := os.ReadFile(filepath.Join(dir, "metro.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "metro.yaml"), bytes.Replace(yaml, []byte("name: ext"), []byte("name: ext2"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitOutput(t, "metro.yaml changed; restart metro dev", 10*time.Second)
	if code := d.interrupt(t, 30*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

// TestDevStartsWithBrokenBuild: a worker that does not build at start is
// reported, the others serve, and saving a fix starts it.
func TestDevStartsWithBrokenBuild(t *testing.T) {
	t.Parallel()
	dir := copyProject(t, e2eProject)
	handler := filepath.Join(dir, e2eHandler)
	src, err := os.ReadFile(handler)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(src), `"Apple"`, `"Apple" +`, 1)
	if err := os.WriteFile(handler, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDev(t, dir, "DEVSERVER_TEST_GRACE=5s", "DEVSERVER_TEST_NATS_PORT=0",
		"METRO_LISTEN=127.0.0.1:0", "METRO_ADMIN=127.0.0.1:0")
	st := d.state(t, 3*time.Minute)
	d.waitOutput(t, "! catalog: build failed; fix it and save to retry", time.Second)
	client := &http.Client{Timeout: 10 * time.Second}
	if code, b, err := get(t.Context(), client, st.GatewayURL+"/orders"); err != nil || code != http.StatusOK {
		t.Fatalf("GET /orders: %d %q %v", code, b, err)
	}
	if len(st.Workers["catalog"]) != 0 {
		t.Errorf("catalog pids %v, want none", st.Workers["catalog"])
	}
	if err := os.WriteFile(handler, []byte(strings.Replace(string(src), `"Apple"`, `"Apple fixed"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitOutput(t, "started catalog in ", 2*time.Minute)
	metrotest.WaitFor(t, "the catalog to answer", 30*time.Second, func() bool {
		code, b, err := get(t.Context(), client, st.GatewayURL+e2ePath)
		return err == nil && code == http.StatusOK && strings.Contains(b, "Apple fixed")
	})
	if n := len(d.state(t, time.Second).Workers["catalog"]); n != 2 {
		t.Errorf("%d catalog pids, want 2", n)
	}
	if code := d.interrupt(t, 60*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}
