package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
	"github.com/metropolis-dev/metro/internal/wire"
)

// errorEnv is a gateway with a users worker, an upload route, and a plain
// subscriber behind a declared route that answers with a broken status.
func errorEnv(t *testing.T) *env {
	e := newEnv(t, proxy.Config{
		MaxBody: 1024,
		Routes:  []proxy.RouteConfig{{Match: "GET /bad/{kind}"}},
	})
	e.worker("users", map[string]http.HandlerFunc{
		"GET /users/{id}": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.PathValue("id")) },
		"POST /upload": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprint(w, len(b))
		},
	})
	e.responder("bad.*.GET", func(m *nats.Msg) {
		kind := strings.Split(m.Subject, ".")[1]
		m.RespondMsg(&nats.Msg{Header: nats.Header{wire.HeaderStatus: {kind}}, Data: []byte("x")})
	})
	return e
}

// TestErrorTable sends, over real HTTP, every malformed or unroutable
// request of PROTOCOL.md section 4 that Go's HTTP server lets through to
// the handler, and checks status, problem body and that nothing was
// published where the protocol says so.
func TestErrorTable(t *testing.T) {
	e := errorEnv(t)
	spy := e.spy()
	big := strings.Repeat("b", 2048)
	tests := []struct {
		name      string
		method    string
		target    string
		headers   string // extra header lines, each ending in \r\n
		body      string
		status    int
		allow     string
		published bool
	}{
		{name: "dot dot segment", method: "GET", target: "/users/..", status: 400},
		{name: "dot segment", method: "GET", target: "/./users/1", status: 400},
		{name: "encoded dot dot", method: "GET", target: "/users/%2e%2E", status: 400},
		{name: "encoded dot", method: "GET", target: "/users/%2E", status: 400},
		{name: "inbox first segment", method: "GET", target: "/_INBOX/x", status: 400},
		{name: "inbox other case", method: "GET", target: "/_inbox/x", status: 400},
		{name: "unknown route", method: "GET", target: "/nowhere", status: 404},
		{name: "unknown deeper path", method: "GET", target: "/users/1/orders", status: 404},
		{name: "root unknown", method: "GET", target: "/", status: 404},
		{name: "path over 4096 bytes", method: "GET", target: "/users/" + strings.Repeat("x", 4096), status: 414},
		{name: "65 segments", method: "GET", target: strings.Repeat("/a", 65), status: 414},
		{name: "encoding pushes subject over the limit", method: "GET", target: "/users/" + strings.Repeat("!", 1400), status: 414},
		{name: "lower-case method", method: "get", target: "/users/1", status: 405},
		{name: "method with a dash", method: "M-SEARCH", target: "/users/1", status: 405},
		{name: "method of 21 letters", method: strings.Repeat("A", 21), target: "/users/1", status: 405},
		{name: "known path, other method", method: "DELETE", target: "/users/1", status: 405, allow: "GET, HEAD"},
		{name: "known path, other method, root of tail", method: "PUT", target: "/upload", status: 405, allow: "POST"},
		{name: "body over max with Content-Length", method: "POST", target: "/upload",
			headers: "Content-Length: 2048\r\n", body: big, status: 413},
		{name: "body over max, client waiting for 100-continue", method: "POST", target: "/upload",
			headers: "Expect: 100-continue\r\nContent-Length: 2048\r\n", status: 413},
		{name: "chunked body over max", method: "POST", target: "/upload",
			headers: "Transfer-Encoding: chunked\r\n", body: chunked(big), status: 413},
		{name: "chunked body within max", method: "POST", target: "/upload",
			headers: "Transfer-Encoding: chunked\r\n", body: chunked(big[:1000]), status: 200, published: true},
		{name: "Metro-Status not a number", method: "GET", target: "/bad/abc", status: 502, published: true},
		{name: "Metro-Status of two digits", method: "GET", target: "/bad/99", status: 502, published: true},
		{name: "Metro-Status informational", method: "GET", target: "/bad/101", status: 502, published: true},
		{name: "Metro-Status over 599", method: "GET", target: "/bad/600", status: 502, published: true},
		{name: "Metro-Status of four digits", method: "GET", target: "/bad/2000", status: 502, published: true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rid := "err-" + strconv.Itoa(i)
			req := tc.method + " " + tc.target + " HTTP/1.1\r\nHost: gw\r\nX-Request-Id: " + rid + "\r\n" +
				tc.headers + "Connection: close\r\n\r\n" + tc.body
			resp, body := e.raw(req)
			if tc.status == 200 {
				if resp.StatusCode != 200 || body != "1000" {
					t.Fatalf("got %d %q, want 200 \"1000\"", resp.StatusCode, body)
				}
			} else {
				p := checkProblem(t, resp, body, tc.status)
				if p.RequestID != rid {
					t.Errorf("request_id %q, want the client's %q", p.RequestID, rid)
				}
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			if got := spy.published(rid); got != tc.published {
				t.Errorf("published %v, want %v", got, tc.published)
			}
		})
	}
}

func chunked(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		n := min(len(s), 300)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, s[:n])
		s = s[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// TestRejectedBeforeHandler documents what never reaches the gateway over
// real HTTP: Go's server answers a request line with an invalid escape or
// a method that is not an HTTP token with its own plain 400. The same
// requests given to ServeHTTP directly get the gateway's problem answers.
func TestRejectedBeforeHandler(t *testing.T) {
	e := errorEnv(t)
	for _, line := range []string{
		"GET /users/%zz HTTP/1.1",
		"GET /users/%2 HTTP/1.1",
		"G(T /users/1 HTTP/1.1",
	} {
		resp, body := e.raw(line + "\r\nHost: gw\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%q: net/http answered %d %q, want its own 400", line, resp.StatusCode, body)
		}
	}

	tests := []struct {
		name   string
		method string
		url    *url.URL
		status int
	}{
		// EscapedPath falls back to escaping Path when RawPath is not a
		// valid encoding of it, so an invalid escape cannot reach the
		// codec even here: the '%' travels as %25 and the route is unknown.
		{"invalid escape in RawPath", "GET", &url.URL{Path: "/nowhere/%zz", RawPath: "/nowhere/%zz"}, 404},
		{"method not a token", "G(T", &url.URL{Path: "/users/1"}, 405},
		{"method with a space", "GET X", &url.URL{Path: "/users/1"}, 405},
		{"method with NUL", "GET\x00", &url.URL{Path: "/users/1"}, 405},
		{"empty method", "", &url.URL{Path: "/users/1"}, 405},
		{"dot segment", "GET", &url.URL{Path: "/users/../x"}, 400},
		{"encoded dot segment in RawPath", "GET", &url.URL{Path: "/users/../x", RawPath: "/users/%2E%2E/x"}, 400},
		{"NUL in path", "GET", &url.URL{Path: "/nowhere/a\x00b"}, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{
				Method: tc.method, URL: tc.url, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: http.Header{}, Host: "gw", RemoteAddr: "127.0.0.1:5000", Body: http.NoBody,
			}
			r = r.WithContext(context.Background())
			rec := httptest.NewRecorder()
			e.gw.ServeHTTP(rec, r)
			checkProblem(t, rec.Result(), rec.Body.String(), tc.status)
		})
	}
}

// TestTimeout: a handler slower than the route's timeout gets 504, both
// from the gateway default and from a per-route override in Config.Routes.
func TestTimeout(t *testing.T) {
	tests := []struct {
		name string
		cfg  proxy.Config
	}{
		{"gateway default", proxy.Config{Timeout: 300 * time.Millisecond}},
		{"per-route override", proxy.Config{Routes: []proxy.RouteConfig{{Match: "GET /slow", Timeout: 300 * time.Millisecond}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			e.worker("slow", map[string]http.HandlerFunc{
				// Metro-Deadline ends the handler's context: it gives up
				// when the gateway does.
				"GET /slow": func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
				"GET /fast": func(w http.ResponseWriter, r *http.Request) {},
			})
			start := time.Now()
			resp, body := e.do("GET", "/slow", "", nil)
			checkProblem(t, resp, body, http.StatusGatewayTimeout)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("504 after %v: the 300ms timeout was not applied", d)
			}
			if resp, _ := e.do("GET", "/fast", "", nil); resp.StatusCode != 200 {
				t.Errorf("fast route: %d", resp.StatusCode)
			}
		})
	}
}

// TestNoWorker: a route whose workers are all gone is 503 with
// Retry-After while it is remembered, then, once RouteTTL has passed
// without an announcement, 404 again.
func TestNoWorker(t *testing.T) {
	tests := []struct {
		name  string
		ttl   time.Duration
		final int
	}{
		{"route remembered", 0, http.StatusServiceUnavailable},
		{"route forgotten after TTL", time.Second, http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, proxy.Config{RouteTTL: tc.ttl})
			stop := e.worker("users", map[string]http.HandlerFunc{
				"GET /users/{id}": func(w http.ResponseWriter, r *http.Request) {},
			})
			if resp, _ := e.do("GET", "/users/1", "", nil); resp.StatusCode != 200 {
				t.Fatalf("with a worker: %d", resp.StatusCode)
			}
			stop()
			resp, body := e.do("GET", "/users/1", "", nil)
			if tc.final == http.StatusServiceUnavailable {
				checkProblem(t, resp, body, http.StatusServiceUnavailable)
				// And it stays so, well past discovery rounds.
				for range 5 {
					resp, body = e.do("GET", "/users/1", "", nil)
					checkProblem(t, resp, body, http.StatusServiceUnavailable)
				}
				return
			}
			// With a short TTL the route may already be gone; it must end 404.
			deadline := time.Now().Add(15 * time.Second)
			for resp.StatusCode != http.StatusNotFound {
				if resp.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("before expiry: %d %s", resp.StatusCode, body)
				}
				if time.Now().After(deadline) {
					t.Fatalf("route not forgotten; routes %v", e.gw.Routes())
				}
				time.Sleep(50 * time.Millisecond)
				resp, body = e.do("GET", "/users/1", "", nil)
			}
			checkProblem(t, resp, body, http.StatusNotFound)
		})
	}
}

// TestMaxPayload: to a worker that reads each request as one message (a
// plain subscriber, or a worker of protocol version 2 or older), a body
// the NATS server would refuse is 413, whether the body alone is over
// max_payload or only body and headers together are. To an SDK worker,
// which reads streamed bodies (PROTOCOL.md section 9), the same bodies
// stream.
func TestMaxPayload(t *testing.T) {
	const maxPayload = 4096
	e := newEnvWith(t, proxy.Config{Routes: []proxy.RouteConfig{{Match: "POST /plain"}}}, &server.Options{MaxPayload: maxPayload})
	e.responder("plain.POST", func(m *nats.Msg) { m.Respond([]byte(strconv.Itoa(len(m.Data)))) })
	e.worker("upload", map[string]http.HandlerFunc{
		"POST /streams": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprint(w, len(b))
		},
	})
	spy := e.spy()
	tests := []struct {
		name   string
		path   string
		size   int
		chunk  bool
		status int
	}{
		{"small body", "/plain", 100, false, 200},
		{"body over max_payload", "/plain", maxPayload + 1, false, 413},
		{"chunked body over max_payload", "/plain", maxPayload + 1, true, 413},
		{"body at max_payload, headers push it over", "/plain", maxPayload - 1, false, 413},
		{"body over max_payload, streamed", "/streams", 3*maxPayload + 1, false, 200},
		{"chunked body over max_payload, streamed", "/streams", 3*maxPayload + 1, true, 200},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rid := "mp-" + strconv.Itoa(i)
			body := strings.Repeat("p", tc.size)
			hdr := "Content-Length: " + strconv.Itoa(tc.size) + "\r\n"
			if tc.chunk {
				hdr, body = "Transfer-Encoding: chunked\r\n", chunked(body)
			}
			resp, rb := e.raw("POST " + tc.path + " HTTP/1.1\r\nHost: gw\r\nX-Request-Id: " + rid + "\r\n" + hdr + "Connection: close\r\n\r\n" + body)
			if tc.status == 200 {
				if resp.StatusCode != 200 || rb != strconv.Itoa(tc.size) {
					t.Fatalf("got %d %q", resp.StatusCode, rb)
				}
				return
			}
			checkProblem(t, resp, rb, tc.status)
			if spy.published(rid) {
				t.Error("an oversized request was published")
			}
		})
	}
	if !e.nc.IsConnected() {
		t.Error("the gateway lost its NATS connection")
	}
}

// TestNotConnected: with NATS gone, a routed request is answered 503 at
// once, not buffered until the 30s timeout. The route is declared, so
// that no other reason for a 503 (no live worker) comes first.
func TestNotConnected(t *testing.T) {
	e := newEnv(t, proxy.Config{Routes: []proxy.RouteConfig{{Match: "GET /users/{id}"}}})
	e.ns.Shutdown()
	deadline := time.Now().Add(10 * time.Second)
	for e.nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("gateway still connected after the server shut down")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, target := range []string{"/users/1", "/users/2?x=1"} {
		start := time.Now()
		resp, body := e.do("GET", target, "", nil)
		p := checkProblem(t, resp, body, http.StatusServiceUnavailable)
		if !strings.Contains(p.Detail, "not connected") {
			t.Errorf("detail %q: want the not-connected answer", p.Detail)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("answered after %v; want at once", d)
		}
	}
	if e.gw.Ready() {
		t.Error("gateway ready while disconnected")
	}
}

// TestReconnect: while NATS is down the gateway answers 503 at once and is
// not ready; once a server is back on the same address, gateway and
// worker reconnect and the route answers again.
func TestReconnect(t *testing.T) {
	e := newEnv(t, proxy.Config{})
	stop := e.worker("users", map[string]http.HandlerFunc{
		"GET /users/{id}": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.PathValue("id")) },
	}, metro.WithNATSOptions(nats.ReconnectWait(50*time.Millisecond)))
	port := e.ns.Addr().(*net.TCPAddr).Port
	e.ns.Shutdown()
	e.ns.WaitForShutdown()
	deadline := time.Now().Add(10 * time.Second)
	for e.nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("still connected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, body := e.do("GET", "/users/1", "", nil)
	checkProblem(t, resp, body, http.StatusServiceUnavailable)
	if e.gw.Ready() {
		t.Error("ready while disconnected")
	}
	natstest.RunWith(t, &server.Options{Port: port})
	deadline = time.Now().Add(20 * time.Second)
	for {
		resp, body = e.do("GET", "/users/1", "", nil)
		if resp.StatusCode == 200 && body == "1" {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the server came back: %d %s", resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !e.gw.Ready() {
		t.Error("not ready after reconnecting")
	}
	stop() // while the new server runs: cleanups would stop it first
}
