package proxy_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// sample is the value of one series of reg (0 when absent): name, then
// label pairs.
func sample(t testing.TB, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

// rawConn is a client connection that writes bytes as the test says.
type rawConn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func (e *env) dialRaw() *rawConn {
	e.t.Helper()
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return &rawConn{t: e.t, c: c}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

func (rc *rawConn) response() (*http.Response, string) {
	rc.t.Helper()
	if rc.r == nil {
		rc.r = bufio.NewReader(rc.c) // only now: TestRequestMemory counts what the test holds too
	}
	resp, err := http.ReadResponse(rc.r, nil)
	if err != nil {
		rc.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		rc.t.Fatal(err)
	}
	return resp, string(b)
}

func postHead(path string, length int) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: metro\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", path, length)
}

// digest answers with the length and SHA-256 of the request body.
func digest(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	sum := sha256.Sum256(b)
	fmt.Fprintf(w, "%d %s", len(b), hex.EncodeToString(sum[:]))
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return strconv.Itoa(len(b)) + " " + hex.EncodeToString(sum[:])
}

// TestBodiesArriveWhole: bodies of every size around the buffer's growth
// steps, with and without Content-Length, reach the worker unchanged; a
// body over the limit is refused either way.
func TestBodiesArriveWhole(t *testing.T) {
	e := newEnv(t, proxy.Config{MaxBody: 300 << 10})
	e.worker("up", map[string]http.HandlerFunc{"POST /upload": digest})
	for _, n := range []int{1, 100, 16<<10 - 1, 16 << 10, 16<<10 + 1, 100 << 10, 300 << 10} {
		body := make([]byte, n)
		for i := range body {
			body[i] = byte(i * 7)
		}
		for _, chunked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d chunked=%v", n, chunked), func(t *testing.T) {
				var rd io.Reader = bytes.NewReader(body)
				if chunked {
					rd = io.MultiReader(rd) // hides the length from http.NewRequest
				}
				req, err := http.NewRequest("POST", e.srv.URL+"/upload", rd)
				if err != nil {
					t.Fatal(err)
				}
				resp, got := e.doReq(req)
				if resp.StatusCode != 200 || got != digestOf(body) {
					t.Errorf("status %d, %q; want 200, %q", resp.StatusCode, got, digestOf(body))
				}
			})
		}
	}
	for _, chunked := range []bool{false, true} {
		var rd io.Reader = bytes.NewReader(make([]byte, 300<<10+1))
		if chunked {
			rd = io.MultiReader(rd)
		}
		req, _ := http.NewRequest("POST", e.srv.URL+"/upload", rd)
		resp, body := e.doReq(req)
		checkProblem(t, resp, body, http.StatusRequestEntityTooLarge)
	}
}

// TestBodyGrowsAsItArrives: connections that announce a large body and
// send little of it make the gateway allocate little, not the announced
// length each, as they did when the buffer was made from Content-Length.
func TestBodyGrowsAsItArrives(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, proxy.Config{Registerer: reg})
	e.worker("up", map[string]http.HandlerFunc{"POST /upload": digest})
	const conns, announced, sent = 40, 1 << 20, 1 << 10
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range conns {
		rc := e.dialRaw()
		rc.send(postHead("/upload", announced) + strings.Repeat("x", sent))
		// The client gives up: the gateway's read ends short, and the
		// request with it.
		rc.c.Close()
	}
	metrotest.WaitFor(t, "every request to end", 20*time.Second, func() bool {
		return sample(t, reg, "metro_gateway_requests_total", "route", "POST /upload", "code", "400") == conns
	})
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d requests announcing %d bytes and sending %d: %d bytes allocated", conns, announced, sent, allocated)
	if allocated > conns*announced/4 {
		t.Errorf("%d bytes allocated for %d requests that sent %d bytes each: the announced length was allocated", allocated, conns, sent)
	}
}

// TestBodyMemoryBudget: bodies held at once are bounded by MaxBodyMemory;
// a request whose body would go past it is answered 503 with Retry-After
// at once (and its connection closed, so the rest of its body is not
// read); the budget comes back as requests finish.
func TestBodyMemoryBudget(t *testing.T) {
	reg := prometheus.NewRegistry()
	const length = 128 << 10
	e := newEnv(t, proxy.Config{Registerer: reg, MaxBodyMemory: 2*length + 8<<10})
	e.worker("up", map[string]http.HandlerFunc{"POST /upload": digest})
	held := func() float64 { return sample(t, reg, "metro_gateway_body_memory_bytes") }
	body := bytes.Repeat([]byte("b"), length)

	// Two clients send most of their bodies and stall: their buffers
	// have grown to the whole length.
	var slow []*rawConn
	for i := range 2 {
		rc := e.dialRaw()
		rc.send(postHead("/upload", length) + string(body[:100<<10]))
		metrotest.WaitFor(t, "the body buffer to grow", 20*time.Second, func() bool { return held() == float64((i+1)*length) })
		slow = append(slow, rc)
	}
	third := e.dialRaw()
	third.send(postHead("/upload", length) + "just the start")
	resp, got := third.response()
	checkProblem(t, resp, got, http.StatusServiceUnavailable)
	if !resp.Close {
		t.Error("the refused request's connection stays open: the server would read the rest of its body")
	}
	if n := sample(t, reg, "metro_gateway_shed_total", "limit", "max_body_memory"); n != 1 {
		t.Errorf("metro_gateway_shed_total{limit=max_body_memory} = %v, want 1", n)
	}

	// The stalled bodies complete and are served whole.
	slow[0].send(string(body[100<<10:]))
	resp, got = slow[0].response()
	if resp.StatusCode != 200 || got != digestOf(body) {
		t.Errorf("first stalled request: %d %q", resp.StatusCode, got)
	}
	metrotest.WaitFor(t, "the budget to come back", 20*time.Second, func() bool { return held() == length })
	fresh := e.dialRaw()
	fresh.send(postHead("/upload", length) + string(body))
	if resp, got = fresh.response(); resp.StatusCode != 200 || got != digestOf(body) {
		t.Errorf("a request once there is room: %d %q", resp.StatusCode, got)
	}
	slow[1].send(string(body[100<<10:]))
	if resp, got = slow[1].response(); resp.StatusCode != 200 || got != digestOf(body) {
		t.Errorf("second stalled request: %d %q", resp.StatusCode, got)
	}
	metrotest.WaitFor(t, "no body memory held", 20*time.Second, func() bool { return held() == 0 })
}

// hangRoute declares GET /hang, served by a subscriber that never answers
// (a hung worker), and returns how many requests it has received.
func hangRoute(e *env) *atomic.Int64 {
	var got atomic.Int64
	e.responder("hang.GET", func(*nats.Msg) { got.Add(1) })
	return &got
}

const hangRequest = "GET /hang HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\nCookie: session=0123456789abcdef0123456789abcdef\r\n\r\n"

// TestMaxInFlight: beyond MaxInFlight requests in flight, the gateway
// answers 503 with Retry-After at once and counts it; requests that end
// free their place.
func TestMaxInFlight(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, proxy.Config{Registerer: reg, MaxInFlight: 3, Routes: []proxy.RouteConfig{{Match: "GET /hang"}, {Match: "GET /ok"}}})
	got := hangRoute(e)
	e.responder("ok.GET", func(m *nats.Msg) { m.Respond([]byte("ok")) })
	var hung []*rawConn
	for range 3 {
		rc := e.dialRaw()
		rc.send(hangRequest)
		hung = append(hung, rc)
	}
	metrotest.WaitFor(t, "three requests in flight", 20*time.Second, func() bool { return got.Load() == 3 })
	for _, path := range []string{"/hang", "/ok"} {
		start := time.Now()
		resp, body := e.do("GET", path, "", nil)
		p := checkProblem(t, resp, body, http.StatusServiceUnavailable)
		if !strings.Contains(p.Detail, "max_in_flight") {
			t.Errorf("detail %q does not name the limit", p.Detail)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("answered after %v; want at once", d)
		}
	}
	if n := sample(t, reg, "metro_gateway_shed_total", "limit", "max_in_flight"); n != 2 {
		t.Errorf("metro_gateway_shed_total{limit=max_in_flight} = %v, want 2", n)
	}
	if got.Load() != 3 {
		t.Errorf("%d requests published; the refused ones must not be", got.Load())
	}
	for _, rc := range hung {
		rc.c.Close()
	}
	metrotest.WaitFor(t, "a place to come free", 20*time.Second, func() bool {
		resp, body := e.do("GET", "/ok", "", nil)
		return resp.StatusCode == 200 && body == "ok"
	})
}

// TestRequestMemory: what a request waiting on a hung worker costs the
// gateway stays within config.GatewayRequestMemory, the figure the default
// max_in_flight and metro deploy's sizing rest on.
func TestRequestMemory(t *testing.T) {
	e := newEnv(t, proxy.Config{Timeout: 2 * time.Minute, Routes: []proxy.RouteConfig{{Match: "GET /hang"}}})
	got := hangRoute(e)
	// One request first, so what every request shares (the listener's
	// first connection, pools) is not counted as the cost of one.
	rc := e.dialRaw()
	rc.send(hangRequest)
	metrotest.WaitFor(t, "the first request", 20*time.Second, func() bool { return got.Load() == 1 })
	const n = 300
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		e.dialRaw().send(hangRequest)
	}
	metrotest.WaitFor(t, "every request in flight", 20*time.Second, func() bool { return got.Load() == n+1 })
	runtime.GC()
	runtime.ReadMemStats(&after)
	inUse := func(m *runtime.MemStats) int64 { return int64(m.HeapInuse + m.StackInuse) }
	per := (inUse(&after) - inUse(&before)) / n
	t.Logf("%d bytes of heap and stacks per request in flight", per)
	if per > config.GatewayRequestMemory {
		t.Errorf("a request in flight holds %d bytes, more than config.GatewayRequestMemory (%d) that the memory limits assume", per, config.GatewayRequestMemory)
	}
}

// TestHungWorkerMemoryBounded: with a worker that never answers, clients
// beyond MaxInFlight are refused at once, so what the gateway holds stays
// at about MaxInFlight requests' worth however many keep coming, instead
// of growing with rate x timeout.
func TestHungWorkerMemoryBounded(t *testing.T) {
	const limit, clients = 50, 300
	e := newEnv(t, proxy.Config{MaxInFlight: limit, Timeout: 2 * time.Minute, Routes: []proxy.RouteConfig{{Match: "GET /hang"}}})
	got := hangRoute(e)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	refused := 0
	for i := range clients {
		rc := e.dialRaw()
		rc.send(hangRequest)
		if i < limit {
			metrotest.WaitFor(t, "the request to reach the worker", 20*time.Second, func() bool { return got.Load() == int64(i+1) })
			continue
		}
		rc.c.SetReadDeadline(time.Now().Add(10 * time.Second)) // "at once", on a busy machine
		if resp, _ := rc.response(); resp.StatusCode == http.StatusServiceUnavailable {
			refused++
		}
		rc.c.Close()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if refused != clients-limit || got.Load() != limit {
		t.Errorf("%d refused, %d reached the worker; want %d and %d", refused, got.Load(), clients-limit, limit)
	}
	held := int64(after.HeapInuse+after.StackInuse) - int64(before.HeapInuse+before.StackInuse)
	t.Logf("%d clients, %d in flight: %d bytes held", clients, limit, held)
	if bound := int64(limit*config.GatewayRequestMemory + 2<<20); held > bound {
		t.Errorf("%d bytes held with %d requests in flight, more than %d", held, limit, bound)
	}
}

// TestChunkedBodyCutShort: a chunked body whose connection ends before its
// last chunk is not a whole body: nothing is published for it, and the
// client (if it still reads) gets 400. Taken whole, a truncated upload
// would reach the worker as if complete.
func TestChunkedBodyCutShort(t *testing.T) {
	e := newEnv(t, proxy.Config{})
	e.worker("up", map[string]http.HandlerFunc{"POST /upload": digest})
	spy := e.spy()
	for _, size := range []int{5, 200 << 10} { // whole in one message, and past half of one
		rid := "cut-" + strconv.Itoa(size)
		rc := e.dialRaw()
		rc.send("POST /upload HTTP/1.1\r\nHost: gw\r\nX-Request-Id: " + rid + "\r\nTransfer-Encoding: chunked\r\n\r\n" +
			strconv.FormatInt(int64(size), 16) + "\r\n" + strings.Repeat("x", size/2))
		rc.c.(*net.TCPConn).CloseWrite()
		resp, body := rc.response()
		checkProblem(t, resp, body, http.StatusBadRequest)
		if spy.published(rid) {
			t.Errorf("%d bytes announced, %d sent: a cut-short body was published", size, size/2)
		}
	}
}
