package proxy_test

import (
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/proxy"
	"github.com/metropolis-dev/metro/internal/wire"
)

// echoEnv is a gateway with a declared route "/h/{rest...}" served by a
// plain subscriber that hands each request message to the test and
// answers with reply's headers and the request body.
func echoEnv(t *testing.T, cfg proxy.Config, reply nats.Header) (*env, chan *nats.Msg) {
	cfg.Routes = append(cfg.Routes, proxy.RouteConfig{Match: "/h/{rest...}"})
	e := newEnv(t, cfg)
	got := make(chan *nats.Msg, 16)
	e.responder("h.>", func(m *nats.Msg) {
		got <- m
		h := nats.Header{}
		for k, v := range reply {
			h[k] = slices.Clone(v)
		}
		m.RespondMsg(&nats.Msg{Header: h, Data: m.Data})
	})
	return e, got
}

func received(t *testing.T, ch chan *nats.Msg) *nats.Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("the subscriber got no request")
		return nil
	}
}

const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// TestRequestHeaders checks the request message the gateway sends for one
// rich request, from a trusted peer (the default: the test client is on
// loopback) and from an untrusted one (TrustedProxies empty).
func TestRequestHeaders(t *testing.T) {
	const request = "GET /h/a%20b/?x=1&y=%20 HTTP/1.1\r\n" +
		"Host: shop.test\r\n" +
		"Connection: keep-alive, X-Hop-Named\r\n" +
		"X-Hop-Named: secret\r\n" +
		"Keep-Alive: timeout=5\r\n" +
		"Proxy-Authorization: Basic eDp5\r\n" +
		"Proxy-Foo: bar\r\n" +
		"TE: trailers\r\n" +
		"Trailer: X-T\r\n" +
		"Upgrade: websocket\r\n" +
		"X-Multi: one\r\n" +
		"X-Other: o\r\n" +
		"X-Multi: two\r\n" +
		"X-Multi: three\r\n" +
		"Metro-Method: DELETE\r\n" +
		"Metro-Status: 500\r\n" +
		"metro-foo: bar\r\n" +
		"Metro-Deadline: 1\r\n" +
		"Metro-Version: 9\r\n" +
		"traceparent: " + traceparent + "\r\n" +
		"tracestate: congo=t61rcWkgMzE\r\n" +
		"X-Request-Id: client-id-1\r\n" +
		"X-Forwarded-For: 203.0.113.7\r\n" +
		"X-Forwarded-For: 198.51.100.1, 192.0.2.9\r\n" +
		"X-Forwarded-Host: shop.example\r\n" +
		"X-Forwarded-Proto: https\r\n" +
		"Forwarded: for=203.0.113.7;proto=https\r\n" +
		"X-Real-IP: 203.0.113.7\r\n" +
		"True-Client-IP: 203.0.113.7\r\n" +
		"X-Client-IP: 203.0.113.7\r\n" +
		"X-Forwarded-Port: 443\r\n" +
		"X-Forwarded-Prefix: /admin\r\n" +
		"\r\n"
	// claims are the other headers that describe the client: kept from a
	// trusted proxy, dropped from anyone else.
	claims := map[string]string{
		"Forwarded":          "for=203.0.113.7;proto=https",
		"X-Real-Ip":          "203.0.113.7",
		"True-Client-Ip":     "203.0.113.7",
		"X-Client-Ip":        "203.0.113.7",
		"X-Forwarded-Port":   "443",
		"X-Forwarded-Prefix": "/admin",
	}
	tests := []struct {
		name             string
		trusted          []netip.Prefix
		xff, host, proto string
	}{
		{"trusted peer", nil, "203.0.113.7, 198.51.100.1, 192.0.2.9, 127.0.0.1", "shop.example", "https"},
		{"untrusted peer", []netip.Prefix{}, "127.0.0.1", "shop.test", "http"},
		{"trusted by explicit CIDR", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			"203.0.113.7, 198.51.100.1, 192.0.2.9, 127.0.0.1", "shop.example", "https"},
		{"other CIDR only", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "127.0.0.1", "shop.test", "http"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, got := echoEnv(t, proxy.Config{TrustedProxies: tc.trusted, Timeout: 20 * time.Second}, nil)
			e.waitRoutes("/h/{rest...}")
			before := time.Now()
			resp, _ := e.raw(request)
			after := time.Now()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			m := received(t, got)
			if m.Subject != "h.a%20b.GET" {
				t.Errorf("subject %q", m.Subject)
			}
			h := m.Header
			for _, k := range []string{"Connection", "X-Hop-Named", "Keep-Alive", "Proxy-Authorization", "Proxy-Foo",
				"Te", "Trailer", "Upgrade", "Transfer-Encoding", "Metro-Foo", "Metro-Status"} {
				if v, ok := h[k]; ok {
					t.Errorf("hop-by-hop or client Metro-* header %s reached the worker: %q", k, v)
				}
			}
			want := map[string][]string{
				"X-Multi":           {"one", "two", "three"},
				"X-Other":           {"o"},
				"Traceparent":       {traceparent},
				"Tracestate":        {"congo=t61rcWkgMzE"},
				"Metro-Method":      {"GET"},
				"Metro-Path":        {"/h/a%20b/"},
				"Metro-Query":       {"x=1&y=%20"},
				"Metro-Version":     {wire.Version},
				"Metro-Request-Id":  {"client-id-1"},
				"X-Request-Id":      {"client-id-1"},
				"X-Forwarded-For":   {tc.xff},
				"X-Forwarded-Host":  {tc.host},
				"X-Forwarded-Proto": {tc.proto},
			}
			for k, v := range want {
				if !slices.Equal(h[k], v) {
					t.Errorf("%s = %q, want %q", k, h[k], v)
				}
			}
			trusted := tc.host == "shop.example"
			for k, v := range claims {
				if got, ok := h[k]; ok != trusted || ok && !slices.Equal(got, []string{v}) {
					t.Errorf("%s = %q (present %v), want present only from a trusted peer", k, got, ok)
				}
			}
			dl := h.Values("Metro-Deadline")
			if len(dl) != 1 {
				t.Fatalf("Metro-Deadline %q", dl)
			}
			ms, err := strconv.ParseInt(dl[0], 10, 64)
			if err != nil {
				t.Fatalf("Metro-Deadline %q: %v", dl[0], err)
			}
			lo, hi := before.Add(20*time.Second).UnixMilli()-1, after.Add(20*time.Second).UnixMilli()+1
			if ms < lo || ms > hi {
				t.Errorf("Metro-Deadline %d not within the 20s timeout: [%d, %d]", ms, lo, hi)
			}
			if resp.Header.Get("X-Request-Id") != "client-id-1" {
				t.Errorf("X-Request-Id answered %q", resp.Header.Get("X-Request-Id"))
			}
		})
	}
}

// TestDefaultTrustsOnlyLoopback: with no trusted_proxies configured, a
// peer on a private network is not a proxy: behind a load balancer that
// rewrites sources to node addresses, that peer is any internet client.
func TestDefaultTrustsOnlyLoopback(t *testing.T) {
	e, got := echoEnv(t, proxy.Config{}, nil)
	e.waitRoutes("/h/{rest...}")
	for _, peer := range []string{"10.1.2.3:4567", "172.16.0.9:1", "192.168.1.1:80", "[fd00::1]:443", "100.64.0.1:1"} {
		req := httptest.NewRequest("GET", "/h/x", nil)
		req.RemoteAddr = peer
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		req.Header.Set("X-Real-IP", "203.0.113.7")
		req.Header.Set("Forwarded", "for=203.0.113.7")
		rec := httptest.NewRecorder()
		e.gw.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("%s: status %d: %s", peer, rec.Code, rec.Body)
		}
		m := received(t, got)
		host, _, _ := net.SplitHostPort(peer)
		if xff := m.Header.Values("X-Forwarded-For"); !slices.Equal(xff, []string{host}) {
			t.Errorf("from %s: X-Forwarded-For %q, want only the peer %q", peer, xff, host)
		}
		for _, k := range []string{"X-Real-Ip", "Forwarded"} {
			if v, ok := m.Header[k]; ok {
				t.Errorf("from %s: %s %q reached the worker", peer, k, v)
			}
		}
	}
}

// TestNoQuery: Metro-Query is sent only when there is a query.
func TestNoQuery(t *testing.T) {
	e, got := echoEnv(t, proxy.Config{}, nil)
	e.waitRoutes("/h/{rest...}")
	for _, tc := range []struct{ target, query string }{{"/h/x", ""}, {"/h/x?", ""}, {"/h/x?a", "a"}, {"/h/x?%zz=1", "%zz=1"}} {
		e.raw("GET " + tc.target + " HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		m := received(t, got)
		if v, ok := m.Header["Metro-Query"]; (tc.query == "") != !ok || ok && v[0] != tc.query {
			t.Errorf("%s: Metro-Query %q, want %q", tc.target, v, tc.query)
		}
	}
}

// TestRequestID: a valid X-Request-Id is passed on and echoed; anything
// else is replaced by a fresh 128-bit id, sent and answered alike.
func TestRequestID(t *testing.T) {
	e, got := echoEnv(t, proxy.Config{}, nil)
	e.waitRoutes("/h/{rest...}")
	max := strings.Repeat("a", 128)
	tests := []struct {
		name, id string
		keep     bool
	}{
		{"simple", "abc-123", true},
		{"every allowed byte", "AZaz09-_.:+/=", true},
		{"128 bytes", max, true},
		{"129 bytes", max + "a", false},
		{"space", "a b", false},
		{"semicolon", "a;b", false},
		{"non-ASCII", "caf\u00e9", false},
		{"absent", "", false},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.id != "" {
				hdr["X-Request-Id"] = tc.id
			}
			resp, _ := e.do("GET", "/h/id", "", hdr)
			m := received(t, got)
			answered := resp.Header.Get("X-Request-Id")
			sent := m.Header.Get(wire.HeaderRequestID)
			if answered != sent {
				t.Errorf("answered %q, sent %q", answered, sent)
			}
			if tc.keep {
				if sent != tc.id {
					t.Errorf("sent %q, want the client's %q", sent, tc.id)
				}
				return
			}
			if b, err := hex.DecodeString(sent); err != nil || len(b) != 16 {
				t.Errorf("replacement id %q is not 128 bits in hex", sent)
			}
			if seen[sent] {
				t.Errorf("replacement id %q repeated", sent)
			}
			seen[sent] = true
		})
	}
}

// TestResponseHeaders: the worker's headers reach the client, values in
// order, except hop-by-hop ones and the protocol's Metro-* and Nats-*.
// Header names match without regard to case, as NATS clients in other
// languages send them as they like.
func TestResponseHeaders(t *testing.T) {
	reply := nats.Header{
		"metro-status":       {"201"},
		"Content-Type":       {"text/plain; charset=utf-8"},
		"X-Multi":            {"a", "b", "c"},
		"Set-Cookie":         {"a=1", "b=2"},
		"x-lower":            {"v"},
		"Connection":         {"X-Secret"},
		"X-Secret":           {"s"},
		"Keep-Alive":         {"timeout=5"},
		"Proxy-Authenticate": {"Basic"},
		"Upgrade":            {"h2c"},
		"Trailer":            {"X-T"},
		"Transfer-Encoding":  {"gzip"},
		"Metro-Extra":        {"x"},
		"Nats-Foo":           {"y"},
		"X-Request-Id":       {"forged"},
	}
	e, got := echoEnv(t, proxy.Config{}, reply)
	e.waitRoutes("/h/{rest...}")
	body := make([]byte, 256)
	for i := range body {
		body[i] = byte(i)
	}
	resp, rb := e.raw("POST /h/r HTTP/1.1\r\nHost: h\r\nX-Request-Id: rid-7\r\nContent-Length: 256\r\n\r\n" + string(body))
	received(t, got)
	if resp.StatusCode != 201 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if rb != string(body) {
		t.Errorf("body changed on the way: %q", rb)
	}
	for k, v := range map[string][]string{
		"Content-Type":   {"text/plain; charset=utf-8"},
		"X-Multi":        {"a", "b", "c"},
		"Set-Cookie":     {"a=1", "b=2"},
		"X-Lower":        {"v"},
		"X-Request-Id":   {"rid-7"},
		"Content-Length": {"256"},
	} {
		if !slices.Equal(resp.Header[k], v) {
			t.Errorf("%s = %q, want %q", k, resp.Header[k], v)
		}
	}
	for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Authenticate", "Upgrade", "Trailer",
		"Transfer-Encoding", "Metro-Extra", "Metro-Status", "Nats-Foo"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("%s reached the client: %q", k, v)
		}
	}
	if c := resp.Header.Get("Connection"); strings.Contains(c, "X-Secret") {
		t.Errorf("Connection %q", c)
	}
}

// TestNoContentTypeSniffed: a reply without Content-Type gets none from
// the gateway either (nothing sniffed): the worker chose.
func TestNoContentTypeSniffed(t *testing.T) {
	e, got := echoEnv(t, proxy.Config{}, nats.Header{"X-A": {"1"}})
	e.waitRoutes("/h/{rest...}")
	resp, _ := e.do(http.MethodPost, "/h/x", "<html>hello</html>", nil)
	received(t, got)
	if v, ok := resp.Header["Content-Type"]; ok {
		t.Errorf("Content-Type %q on a reply that had none", v)
	}
}
