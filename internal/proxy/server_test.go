package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/leaktest"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natsconn"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// runServer starts a whole gateway process in this one: proxy.NewServer
// on 127.0.0.1:0 with an admin listener. stop cancels Run's context, as
// SIGTERM does in metro gateway; wait returns Run's error.
func runServer(t *testing.T, natsURL string, natsOpts ...nats.Option) (s *proxy.Server, stop context.CancelFunc, wait func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := proxy.NewServer(ctx, proxy.ServerConfig{
		Listen:      "127.0.0.1:0",
		Admin:       "127.0.0.1:0",
		NATSURL:     natsURL,
		NATSOptions: natsOpts,
		Gateway:     proxy.Config{DiscoveryInterval: 50 * time.Millisecond, Timeout: 20 * time.Second},
		Logger:      quiet,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var runErr error
	wait = func() error {
		once.Do(func() { runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { cancel(); wait() })
	return s, cancel, wait
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitStatus polls url until it answers want.
func waitStatus(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, url)
		if code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d %q, want %d", url, code, body, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServerStopWithRequestsInFlight: stopping the gateway (SIGTERM in
// metro gateway) lets requests in flight finish with their 200s, readiness
// reports 503 meanwhile, and Run returns cleanly.
func TestServerStopWithRequestsInFlight(t *testing.T) {
	ns := natstest.Run(t)
	const n = 5
	arrived := make(chan struct{}, n)
	release := make(chan struct{})
	metrotest.StartWorker(t, ns.ClientURL(), "slow", metrotest.Routes(map[string]http.HandlerFunc{
		"GET /slow/{i}": func(w http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			<-release
			fmt.Fprint(w, "done ", r.PathValue("i"))
		},
		"GET /fast": func(w http.ResponseWriter, r *http.Request) {},
	}), metro.WithLogger(quiet))
	s, stop, wait := runServer(t, ns.ClientURL())
	base, admin := "http://"+s.Addr().String(), "http://"+s.AdminAddr().String()
	waitStatus(t, admin+"/readyz", 200)
	waitStatus(t, base+"/fast", 200)

	type result struct {
		i      int
		status int
		body   string
		err    error
	}
	results := make(chan result, n)
	for i := range n {
		go func() {
			resp, err := http.Get(fmt.Sprint(base, "/slow/", i))
			r := result{i: i, err: err}
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				r.status, r.body = resp.StatusCode, string(b)
			}
			results <- r
		}()
	}
	for range n {
		<-arrived
	}
	stop()
	waitStatus(t, admin+"/readyz", http.StatusServiceUnavailable)
	if code, _ := get(t, admin+"/healthz"); code != 200 {
		t.Errorf("healthz while stopping: %d", code)
	}
	close(release)
	for range n {
		r := <-results
		if r.err != nil || r.status != 200 || r.body != fmt.Sprint("done ", r.i) {
			t.Errorf("request %d: %d %q %v", r.i, r.status, r.body, r.err)
		}
	}
	if err := wait(); err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, err := http.Get(base + "/slow/late"); err == nil {
		t.Error("the listener still accepts requests after Run returned")
	}
}

// TestServerMetrics: /metrics counts requests by route pattern, never by
// raw path, and reports the NATS connection.
func TestServerMetrics(t *testing.T) {
	ns := natstest.Run(t)
	metrotest.StartWorker(t, ns.ClientURL(), "users", metrotest.Routes(map[string]http.HandlerFunc{
		"GET /users/{id}": func(w http.ResponseWriter, r *http.Request) {
			if r.PathValue("id") == "missing" {
				w.WriteHeader(http.StatusNotFound)
			}
		},
	}), metro.WithLogger(quiet))
	s, _, _ := runServer(t, ns.ClientURL())
	base, admin := "http://"+s.Addr().String(), "http://"+s.AdminAddr().String()
	waitStatus(t, base+"/users/0", 200)
	before := scrape(t, admin)
	for _, p := range []string{"/users/1", "/users/2", "/users/missing", "/nowhere/1", "/nowhere/2", "/users/3"} {
		get(t, base+p)
	}
	after := scrape(t, admin)
	for series, want := range map[string]float64{
		`metro_gateway_requests_total{code="200",route="GET /users/{id}"}`:                 3,
		`metro_gateway_requests_total{code="404",route="GET /users/{id}"}`:                 1,
		`metro_gateway_requests_total{code="404",route="(none)"}`:                          2,
		`metro_gateway_request_duration_seconds_count{code="200",route="GET /users/{id}"}`: 3,
	} {
		if got := after[series] - before[series]; got != want {
			t.Errorf("%s grew by %v, want %v", series, got, want)
		}
	}
	for series, want := range map[string]float64{
		"metro_gateway_requests_in_flight": 0,
		"metro_gateway_nats_connected":     1,
	} {
		if got, ok := after[series]; !ok || got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	_, body := get(t, admin+"/metrics")
	for _, raw := range []string{"/users/1", "/nowhere"} {
		if strings.Contains(body, raw) {
			t.Errorf("/metrics holds the raw path %q", raw)
		}
	}
}

// scrape reads /metrics into series -> value.
func scrape(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	code, body := get(t, admin+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	out := map[string]float64{}
	for _, l := range strings.Split(body, "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", l, err)
		}
		out[l[:i]] = v
	}
	return out
}

// TestServerOverTLSWithCredentials: the gateway and a worker both reach a
// server that demands TLS with client certificates and an nkey, with the
// options metro gateway's --tls-* and --nkey flags give, and a request
// crosses. Without the nkey the gateway refuses to start, saying why;
// when the server later refuses it (revoked), Run ends with that reason.
func TestServerOverTLSWithCredentials(t *testing.T) {
	files := natstest.WriteTLS(t)
	seed, nkeyOpts, nkeyRevoked := natstest.NKeyUserToRevoke(t)
	opts, revoked := files.ServerOptions(t), files.ServerOptions(t)
	opts.Nkeys, opts.Port = nkeyOpts.Nkeys, nkeyOpts.Port
	revoked.Nkeys, revoked.Port = nkeyRevoked.Nkeys, nkeyRevoked.Port
	ns := natstest.RunWith(t, opts)
	url := strings.Replace(ns.ClientURL(), "nats://", "tls://", 1)
	full := natsconn.Auth{NKey: seed, TLSCert: files.ClientCert, TLSKey: files.ClientKey, TLSCA: files.CA}
	auth, err := full.Options()
	if err != nil {
		t.Fatal(err)
	}
	noNKey := full
	noNKey.NKey = ""
	withoutNKey, err := noNKey.Options()
	if err != nil {
		t.Fatal(err)
	}

	_, err = proxy.NewServer(context.Background(), proxy.ServerConfig{Listen: "127.0.0.1:0", NATSURL: url, NATSOptions: withoutNKey, Logger: quiet})
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("NewServer without the nkey: %v, want the authorization violation", err)
	}

	// The worker is stopped before the server is replaced, so only the
	// gateway meets the refusal.
	stopWorker := metrotest.StartWorker(t, url, "secure", metrotest.Routes(map[string]http.HandlerFunc{
		"GET /secret": func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "over TLS") },
	}), metro.WithLogger(quiet), metro.WithNATSOptions(auth...))
	s, _, wait := runServer(t, url, append(auth, nats.ReconnectWait(10*time.Millisecond))...)
	waitStatus(t, "http://"+s.Addr().String()+"/secret", 200)
	if _, body := get(t, "http://"+s.Addr().String()+"/secret"); body != "over TLS" {
		t.Fatalf("body %q", body)
	}
	stopWorker()

	ns.Shutdown()
	ns.WaitForShutdown()
	natstest.RunWith(t, revoked)
	done := make(chan error, 1)
	go func() { done <- wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "closed for good") {
			t.Fatalf("Run: %v, want the NATS connection closed for good", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the gateway still runs after the server refused its credentials")
	}
}

// TestServerLeavesNoGoroutines: a gateway that has served requests leaves
// no goroutine behind when Run returns: not its listeners' or handlers',
// nor its discovery's, access log's or NATS connection's.
func TestServerLeavesNoGoroutines(t *testing.T) {
	ns := natstest.Run(t)
	// A plain micro service: unlike the SDK's pool, its goroutines do not
	// grow with the requests it serves.
	svc, err := micro.AddService(natstest.Connect(t, ns), micro.Config{
		Name: "hello", Version: "1.0.0",
		Endpoint: &micro.EndpointConfig{Subject: "hello.GET", Handler: micro.HandlerFunc(func(r micro.Request) { _ = r.Respond([]byte("hi")) })},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	tr := &http.Transport{DisableKeepAlives: true}
	client := &http.Client{Transport: tr}
	base := runtime.NumGoroutine()

	ctx, cancel := context.WithCancel(context.Background())
	var access metrotest.LockedBuffer
	s, err := proxy.NewServer(ctx, proxy.ServerConfig{
		Listen: "127.0.0.1:0", Admin: "127.0.0.1:0", NATSURL: ns.ClientURL(),
		Gateway: proxy.Config{DiscoveryInterval: 50 * time.Millisecond}, Logger: quiet, AccessLog: &access,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	url := "http://" + s.Addr().String() + "/hello"
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /hello: %s", resp.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			resp, err := client.Get(url)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("GET /hello: %s", resp.Status)
			}
		})
	}
	wg.Wait()
	if resp, err := client.Get("http://" + s.AdminAddr().String() + "/metrics"); err == nil {
		resp.Body.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	tr.CloseIdleConnections()
	leaktest.Settle(t, base)
	if !strings.Contains(access.String(), `"path":"/hello"`) {
		t.Errorf("no access lines written:\n%s", access.String())
	}
}
