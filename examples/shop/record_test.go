package shop_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/examples/shop/orders"
	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/devserver/devtest"
	"github.com/metropolis-dev/metro/internal/devstate"
	"github.com/metropolis-dev/metro/internal/devtoken"
	imetrotest "github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/recording"
	"github.com/metropolis-dev/metro/metrotest"
)

var update = flag.Bool("update", false, "rewrite orders/testdata/session.ndjson from a fresh recording")

// TestRecordReplayMock goes through record, replay and mock on the shop
// with real processes: the metro binary runs metro dev (which builds and
// runs the workers), metro tap --record, metro replay and, in place of
// the catalog, metro mock behind metro dev's gateway.
func TestRecordReplayMock(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "metro")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/metropolis-dev/metro/cmd/metro")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building metro: %v\n%s", err, out)
	}
	dir := t.TempDir()
	if _, err := devtest.CopyProject(".", dir); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(dir, "session.ndjson")

	dev := startMetro(t, dir, bin, "dev", "--listen", "127.0.0.1:0", "--nats-port", "0")
	gw := dev.waitReady(t)

	tap := startMetro(t, dir, bin, "tap", "--json", "--record", rec, "--redact", "X-Api-Key")
	tap.waitErr(t, "tapping")
	// Tap names the worker of each exchange once the services have told
	// it their routes: the session starts when it knows both.
	imetrotest.WaitFor(t, "tap to name both workers", 4*time.Minute, func() bool {
		get(t, gw+"/products")
		get(t, gw+"/orders/0")
		out := tap.out.String()
		return strings.Contains(out, `"worker":"catalog"`) && strings.Contains(out, `"worker":"orders"`)
	})
	before := strings.Count(tap.out.String(), "\n")

	// Placing an order takes a token (gateway.auth): a real one, minted
	// as metro token does, is the secret the recording must not hold.
	cfg, err := config.Load(filepath.Join(dir, "metro.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tok strings.Builder
	if err := devtoken.Run(devtoken.Options{Config: cfg, Sub: "alice", Out: &tok, ErrOut: io.Discard}); err != nil {
		t.Fatal(err)
	}
	secretToken := strings.TrimSpace(tok.String())
	// Replays through the gateway send the token again in place of the
	// recording's redaction marker.
	bearer := "Authorization: Bearer " + secretToken
	const secretCookie, secretKey = "c00kie-value", "k3y-value"
	get(t, gw+"/products/apple")
	req, _ := http.NewRequest("POST", gw+"/orders", strings.NewReader(`{"items":[{"product":"apple","quantity":3},{"product":"banana","quantity":2}]}`))
	req.Header.Set("Authorization", "Bearer "+secretToken)
	req.Header.Set("Cookie", "session="+secretCookie)
	req.Header.Set("X-Api-Key", secretKey)
	if resp, body := imetrotest.Do(t, req); resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /orders: %d %s", resp.StatusCode, body)
	}
	get(t, gw+"/orders/1")
	get(t, gw+"/products/durian")
	req, _ = http.NewRequest("POST", gw+"/orders", strings.NewReader(`{"items":[{"product":"durian","quantity":1}]}`))
	req.Header.Set("Authorization", "Bearer "+secretToken)
	if resp, body := imetrotest.Do(t, req); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("POST /orders durian: %d %s", resp.StatusCode, body)
	}
	// Five requests through the gateway, three calls from orders to the
	// catalog (apple, banana, durian).
	imetrotest.WaitFor(t, "tap to see 8 more exchanges", 4*time.Minute, func() bool { return strings.Count(tap.out.String(), "\n") >= before+8 })
	if code := tap.stop(t); code != 0 {
		t.Fatalf("metro tap exited %d:\n%s", code, tap.errb.String())
	}

	t.Run("the recording", func(t *testing.T) {
		raw, err := os.ReadFile(rec)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{secretToken, secretCookie, secretKey} {
			if strings.Contains(string(raw), s) {
				t.Errorf("the recording holds the secret %q", s)
			}
		}
		exs, err := recording.ReadFile(rec)
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		for _, ex := range exs {
			if ex.Worker == "catalog" && ex.Request.Header.Get("X-Forwarded-For") == "" {
				calls++ // not through the gateway: orders calling the catalog
			}
			if ex.Method == "POST" && ex.Request.Header.Get("Authorization") != "" && ex.Request.Header.Get("Authorization") != recording.Redacted {
				t.Errorf("Authorization recorded as %q", ex.Request.Header.Get("Authorization"))
			}
		}
		if calls != 3 {
			t.Errorf("%d orders -> catalog calls recorded, want 3:\n%s", calls, raw)
		}
	})

	t.Run("replay against the unchanged system", func(t *testing.T) {
		// Over NATS the recorded claims name the customer again.
		code, out, errs := runMetro(t, dir, bin, "replay", rec, "--ignore", "$.id")
		if code != 0 || !strings.Contains(out, " 0 differ, 0 failed") {
			t.Fatalf("metro replay exited %d:\n%s%s", code, out, errs)
		}
		code, out, errs = runMetro(t, dir, bin, "replay", rec, "--ignore", "$.id", "--gateway", gw, "--concurrency", "1", "-H", bearer)
		if code != 0 {
			t.Fatalf("metro replay --gateway exited %d:\n%s%s", code, out, errs)
		}
	})

	t.Run("a changed price", func(t *testing.T) {
		src := filepath.Join(dir, "catalog", "catalog.go")
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		const from = `"apple":  {ID: "apple", Name: "Apple", Price: 50}`
		if !strings.Contains(string(b), from) {
			t.Fatalf("%s lacks %q", src, from)
		}
		if err := os.WriteFile(src, []byte(strings.Replace(string(b), from, strings.Replace(from, "50", "75", 1), 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		dev.waitOut(t, "reloaded catalog")
		code, out, errs := runMetro(t, dir, bin, "replay", rec, "--ignore", "$.id")
		if code != 1 {
			t.Fatalf("metro replay exited %d, want 1:\n%s%s", code, out, errs)
		}
		for _, want := range []string{"GET /products/apple", "body $.price: want 50, got 75", "POST /orders", "body $.items[0].price: want 50, got 75", "body $.total: want 200, got 275"} {
			if !strings.Contains(out, want) {
				t.Errorf("replay output lacks %q:\n%s", want, out)
			}
		}
		code, out, _ = runMetro(t, dir, bin, "replay", rec, "--json", "--filter", "GET /products/{id}")
		if code != 1 || !strings.Contains(out, `"field":"body $.price","want":"50","got":"75"`) {
			t.Errorf("metro replay --json exited %d:\n%s", code, out)
		}
	})
	if code := dev.stop(t); code != 0 {
		t.Fatalf("metro dev exited %d:\n%s", code, dev.out.String())
	}

	t.Run("metro mock stands in for the catalog", func(t *testing.T) {
		yml := filepath.Join(dir, "metro.yaml")
		b, err := os.ReadFile(yml)
		if err != nil {
			t.Fatal(err)
		}
		const from = "    path: ./workers/catalog\n"
		if !strings.Contains(string(b), from) {
			t.Fatalf("metro.yaml lacks %q", from)
		}
		if err := os.WriteFile(yml, []byte(strings.Replace(string(b), from, "    mock: session.ndjson\n", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		dev := startMetro(t, dir, bin, "dev", "--listen", "127.0.0.1:0", "--nats-port", "0")
		gw := dev.waitReady(t)
		dev.waitOut(t, "mock answering from a recording")
		// The recording's prices, not the edited source's: the catalog
		// that answers is the recording.
		code, out, errs := runMetro(t, dir, bin, "replay", rec, "--ignore", "$.id", "--gateway", gw, "-H", bearer)
		if code != 0 {
			t.Fatalf("metro replay through the gateway to the mock exited %d:\n%s%s\n%s", code, out, errs, dev.out.String())
		}
		resp, body := imetrotest.Do(t, mustRequest(t, "GET", gw+"/products/cherry"))
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" ||
			!strings.Contains(body, "records no GET /products/cherry for worker catalog; the nearest recorded request is GET /products/") {
			t.Errorf("an unrecorded request: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		code, out, _ = runMetro(t, dir, bin, "routes", "--json")
		if code != 0 || !strings.Contains(out, `"path": "/products/{id}",
    "worker": "catalog"`) {
			t.Errorf("metro routes does not show the mock's routes (exit %d):\n%s", code, out)
		}
		if code := dev.stop(t); code != 0 {
			t.Errorf("metro dev exited %d:\n%s", code, dev.out.String())
		}
	})

	t.Run("metro mock behind metro gateway, beside the orders worker", func(t *testing.T) {
		// The same stand-in as its own command, with the production
		// gateway and the orders binary metro dev built: no metro dev.
		nats := fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t))
		gwp := startMetro(t, dir, bin, "gateway", "--embed-nats", nats, "--nats", "nats://"+nats, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0")
		gwp.waitErr(t, "gateway listening")
		m := regexp.MustCompile(`"msg":"gateway listening","addr":"([^"]+)"`).FindStringSubmatch(gwp.errb.String())
		if m == nil {
			t.Fatalf("no address in %s", gwp.errb.String())
		}
		mock := startMetro(t, dir, bin, "mock", "catalog", "--from", rec, "--server", "nats://"+nats)
		mock.waitErr(t, "worker serving")
		ord := startProc(t, dir, filepath.Join(dir, ".metro", "bin", "orders"), "NATS_URL=nats://"+nats)
		ord.waitErr(t, "worker serving")
		gw := "http://" + m[1]
		imetrotest.WaitFor(t, "the gateway to route to both", 4*time.Minute, func() bool {
			_, apple := imetrotest.Do(t, mustRequest(t, "GET", gw+"/products/apple"))
			_, order := imetrotest.Do(t, mustRequest(t, "GET", gw+"/orders/0"))
			return strings.Contains(apple, `"price":50`) && strings.Contains(order, "no order 0")
		})
		code, out, errs := runMetro(t, dir, bin, "replay", rec, "--ignore", "$.id", "--gateway", gw, "-H", bearer)
		if code != 0 {
			t.Fatalf("metro replay exited %d:\n%s%s", code, out, errs)
		}
		for _, p := range []*metroProc{mock, ord, gwp} {
			if code := p.stop(t); code != 0 {
				t.Errorf("%s exited %d:\n%s", p.cmd.Path, code, p.errb.String())
			}
		}
	})

	t.Run("metrotest.Replay of the orders recording", func(t *testing.T) {
		mux := http.NewServeMux()
		desk := orders.New(metrotest.Mock(t, rec, "catalog"))
		for pattern, h := range desk.Routes() {
			mux.HandleFunc(pattern, h)
		}
		metrotest.Replay(t, mux, rec, metrotest.Worker("orders"), metrotest.Ignore("$.id"))
	})

	if *update {
		b, err := os.ReadFile(rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("orders", "testdata", "session.ndjson"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// metroProc is one metro process under test, in its own process group.
type metroProc struct {
	cmd       *exec.Cmd
	out, errb *imetrotest.LockedBuffer
	done      chan struct{}
}

// metroEnv is the test's environment without anything that points metro
// at a NATS server or overrides metro.yaml, plus a free admin port.
func metroEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "NATS_URL=") || strings.HasPrefix(kv, "METRO_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "METRO_ADMIN=127.0.0.1:0", "NO_COLOR=1")
}

func startMetro(t *testing.T, dir, bin string, args ...string) *metroProc {
	t.Helper()
	return startCmd(t, dir, exec.Command(bin, args...), metroEnv())
}

// startProc runs a worker binary with env added to metroEnv.
func startProc(t *testing.T, dir, bin string, env ...string) *metroProc {
	t.Helper()
	return startCmd(t, dir, exec.Command(bin), append(metroEnv(), env...))
}

func startCmd(t *testing.T, dir string, cmd *exec.Cmd, env []string) *metroProc {
	t.Helper()
	args := cmd.Args
	p := &metroProc{cmd: cmd, out: &imetrotest.LockedBuffer{}, errb: &imetrotest.LockedBuffer{}, done: make(chan struct{})}
	p.cmd.Dir, p.cmd.Env = dir, env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.errb
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }() //nolint:errcheck // the exit code is read from ProcessState
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s%s", strings.Join(args, " "), p.out.String(), p.errb.String())
		}
	})
	return p
}

// stop sends SIGINT and returns the exit code.
func (p *metroProc) stop(t *testing.T) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGINT) //nolint:errcheck
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatalf("still running a minute after SIGINT:\n%s%s", p.out.String(), p.errb.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *metroProc) waitErr(t *testing.T, s string) {
	t.Helper()
	imetrotest.WaitFor(t, "stderr "+s, 4*time.Minute, func() bool { p.exited(t); return strings.Contains(p.errb.String(), s) })
}

// waitOut waits for s in metro dev's output (its console is stdout and
// stderr alike).
func (p *metroProc) waitOut(t *testing.T, s string) {
	t.Helper()
	imetrotest.WaitFor(t, "output "+s, 4*time.Minute, func() bool {
		p.exited(t)
		return strings.Contains(p.out.String(), s) || strings.Contains(p.errb.String(), s)
	})
}

func (p *metroProc) exited(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("exited early (%v):\n%s%s", p.cmd.ProcessState, p.out.String(), p.errb.String())
	default:
	}
}

// waitReady waits for metro dev's banner and returns its gateway URL.
func (p *metroProc) waitReady(t *testing.T) string {
	t.Helper()
	p.waitOut(t, "metro dev ready in")
	st, err := devstate.Find(p.cmd.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return st.GatewayURL
}

// runMetro runs metro to its end and returns the exit code and output.
func runMetro(t *testing.T, dir, bin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = dir, metroEnv()
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("metro %s: %v", strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func get(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck
	resp.Body.Close()
}
