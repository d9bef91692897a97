package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// buildWorker compiles testdata/worker into a temporary directory.
func buildWorker(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "worker")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/worker")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./testdata/worker: %v\n%s", err, out)
	}
	return bin
}

// child is a worker process in its own process group.
type child struct {
	cmd    *exec.Cmd
	stderr *metrotest.LockedBuffer
	done   chan struct{} // closed once reaped
	err    error         // Wait's result, after done
}

// startChild runs bin with env added; the test's cleanup kills its whole
// process group, reaps it and checks that nothing of the group is left.
func startChild(t *testing.T, bin string, env ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(bin), stderr: &metrotest.LockedBuffer{}, done: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stderr = c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := c.cmd.Process.Pid
	go func() { c.err = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.done
		if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d still has members after the test (kill 0: %v)", pgid, err)
		}
		if t.Failed() {
			t.Logf("worker %d stderr:\n%s", pgid, c.stderr.String())
		}
	})
	return c
}

// waitInstances polls discovery until n instances of service name run.
func (e *env) waitInstances(name string, n int) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		svcs, err := discovery.Collect(context.Background(), e.nc, "", 200*time.Millisecond)
		if err != nil {
			e.t.Fatal(err)
		}
		got := 0
		for _, s := range svcs {
			if s.Name == name {
				got++
			}
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d instances of %s, want %d", got, name, n)
		}
	}
}

// TestNoRequestLostOnReplicaSIGTERM: two worker processes share a route;
// while concurrent requests run through the gateway, one gets SIGTERM. It
// drains and exits 0, and every request is answered 200.
func TestNoRequestLostOnReplicaSIGTERM(t *testing.T) {
	bin := buildWorker(t)
	e := newEnv(t, proxy.Config{Timeout: 10 * time.Second})
	env := []string{"NATS_URL=" + e.ns.ClientURL(), "WORK_DELAY=2ms", "METRO_PREFIX="}
	a, b := startChild(t, bin, env...), startChild(t, bin, env...)
	e.waitInstances("load", 2)
	e.waitRoutes("GET /work/{n}")

	const clients = 8
	var (
		next, done atomic.Int64
		stop       atomic.Bool
		mu         sync.Mutex
		failures   []string
		byPid      = map[string]int{}
		afterExit  = map[string]int{}
		exited     atomic.Bool
		wg         sync.WaitGroup
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	for range clients {
		wg.Go(func() {
			for !stop.Load() {
				n := next.Add(1)
				sentAfterExit := exited.Load()
				resp, err := client.Get(e.srv.URL + "/work/" + strconv.FormatInt(n, 10))
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, fmt.Sprintf("request %d: %v", n, err))
				case resp.StatusCode != 200 || !strings.HasSuffix(string(body), " "+strconv.FormatInt(n, 10)):
					failures = append(failures, fmt.Sprintf("request %d: %d %q", n, resp.StatusCode, body))
				default:
					pid, _, _ := strings.Cut(string(body), " ")
					byPid[pid]++
					if sentAfterExit {
						afterExit[pid]++
					}
				}
				mu.Unlock()
				done.Add(1)
			}
		})
	}
	waitCount := func(n int64) {
		deadline := time.Now().Add(30 * time.Second)
		for done.Load() < n {
			if time.Now().After(deadline) {
				stop.Store(true)
				t.Fatalf("only %d requests done, waiting for %d", done.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCount(200)
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.done:
	case <-time.After(30 * time.Second):
		stop.Store(true)
		wg.Wait()
		t.Fatal("the replica did not exit after SIGTERM")
	}
	exited.Store(true)
	waitCount(done.Load() + 200)
	stop.Store(true)
	wg.Wait()

	if a.err != nil {
		t.Errorf("replica exited with %v, want 0", a.err)
	}
	for _, f := range failures {
		t.Error(f)
	}
	aPid, bPid := strconv.Itoa(a.cmd.Process.Pid), strconv.Itoa(b.cmd.Process.Pid)
	if byPid[aPid] == 0 || byPid[bPid] == 0 {
		t.Errorf("answers by pid %v: both replicas should have served", byPid)
	}
	if afterExit[aPid] != 0 || afterExit[bPid] == 0 {
		t.Errorf("answers after the exit by pid %v: only %s should serve", afterExit, bPid)
	}
	if !strings.Contains(a.stderr.String(), "worker stopped") {
		t.Errorf("the replica did not report a clean drain:\n%s", a.stderr.String())
	}
	t.Logf("%d requests, by pid %v, %d failures", done.Load(), byPid, len(failures))
}
