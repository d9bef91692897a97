package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
	"github.com/metropolis-dev/metro/internal/wire"
)

// framingEnv is a whole gateway server (its own listener, as metro
// gateway runs it) with a declared route /h/{rest...} answered by a plain
// subscriber that echoes the body and records every subject it gets.
type framingEnv struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	seen []string
}

func newFramingEnv(t *testing.T) *framingEnv {
	ns := natstest.Run(t)
	fe := &framingEnv{t: t}
	sub := natstest.Connect(t, ns)
	if _, err := sub.Subscribe("h.>", func(m *nats.Msg) {
		fe.mu.Lock()
		fe.seen = append(fe.seen, m.Subject)
		fe.mu.Unlock()
		m.Respond(m.Data)
	}); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	s := runServerWith(t, proxy.ServerConfig{
		NATSURL: ns.ClientURL(),
		Gateway: proxy.Config{Routes: []proxy.RouteConfig{{Match: "/h/{rest...}"}}, Timeout: 20 * time.Second},
	})
	fe.addr = s.Addr().String()
	waitStatus(t, "http://"+fe.addr+"/h/ready", 200)
	fe.subjects() // forget the readiness checks
	return fe
}

// runServerWith runs proxy.NewServer with cfg on 127.0.0.1:0 until the
// test ends.
func runServerWith(t *testing.T, cfg proxy.ServerConfig) *proxy.Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	if cfg.Gateway.DiscoveryInterval == 0 {
		cfg.Gateway.DiscoveryInterval = 50 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := proxy.NewServer(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return s
}

// exchange writes raw on one connection and reads every response until
// the server closes it.
func (fe *framingEnv) exchange(raw string) (resps []*http.Response, bodies []string, closed bool) {
	fe.t.Helper()
	c, err := net.Dial("tcp", fe.addr)
	if err != nil {
		fe.t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		fe.t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			closed := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
			if !closed {
				fe.t.Logf("reading a response: %v", err)
			}
			return resps, bodies, closed
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			fe.t.Fatalf("reading a body: %v", err)
		}
		resps, bodies = append(resps, resp), append(bodies, string(b))
	}
}

// subjects returns what the subscriber got, after a marker request on a
// fresh connection: anything the gateway published before it is in.
func (fe *framingEnv) subjects() []string {
	fe.t.Helper()
	resps, _, _ := fe.exchange("GET /h/marker HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	if len(resps) != 1 || resps[0].StatusCode != 200 {
		fe.t.Fatalf("marker request: %v", resps)
	}
	fe.mu.Lock()
	defer fe.mu.Unlock()
	out := append([]string(nil), fe.seen...)
	fe.seen = nil
	return out
}

const smuggled = "GET /h/smuggled HTTP/1.1\r\nHost: h\r\n\r\n"

// TestFaultyFraming: a request whose body length two parsers could read
// differently (RFC 9112 section 6.1) is answered 400 and the connection
// closed; nothing after it on the connection is served, and the request
// itself is not either.
func TestFaultyFraming(t *testing.T) {
	fe := newFramingEnv(t)
	tests := []struct{ name, req string }{
		{"chunked then length", "POST /h/bad HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"},
		{"length then chunked", "POST /h/bad HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"lower case names", "POST /h/bad HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n0\r\n\r\n"},
		{"upper case value", "POST /h/bad HTTP/1.1\r\nHost: h\r\nTRANSFER-ENCODING: CHUNKED\r\nCONTENT-LENGTH: 4\r\n\r\n0\r\n\r\n"},
		{"white space", "POST /h/bad HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \t chunked \t\r\nContent-Length:  4 \r\n\r\n0\r\n\r\n"},
		{"space before colon", "POST /h/bad HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"},
		{"bare LF line ends", "POST /h/bad HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\nContent-Length: 4\n\n0\r\n\r\n"},
		{"zero length", "POST /h/bad HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n"},
		{"other coding", "POST /h/bad HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"},
		{"two codings fields", "POST /h/bad HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"},
		{"GET with both", "GET /h/bad HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"},
		{"HTTP/1.0 with both", "POST /h/bad HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"},
		{"HTTP/1.0 chunked", "POST /h/bad HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"conflicting lengths", "POST /h/bad HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nbody"},
		{"length list", "POST /h/bad HTTP/1.1\r\nHost: h\r\nContent-Length: 4, 4\r\n\r\nbody"},
		{"signed length", "POST /h/bad HTTP/1.1\r\nHost: h\r\nContent-Length: +4\r\n\r\nbody"},
		{"after a good request", "GET /h/first HTTP/1.1\r\nHost: h\r\n\r\n" +
			"POST /h/bad HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resps, bodies, closed := fe.exchange(tc.req + smuggled)
			first := strings.HasPrefix(tc.req, "GET /h/first")
			want := 1
			if first {
				want = 2
			}
			if len(resps) != want {
				t.Fatalf("%d responses, want %d: %q", len(resps), want, bodies)
			}
			if !closed {
				t.Error("the connection was not closed")
			}
			if first && resps[0].StatusCode != 200 {
				t.Errorf("the request before the faulty one: status %d", resps[0].StatusCode)
			}
			resp, body := resps[want-1], bodies[want-1]
			if resp.StatusCode != http.StatusBadRequest || !resp.Close {
				t.Errorf("status %d, close %v, want 400 and Connection: close", resp.StatusCode, resp.Close)
			}
			var p wire.Problem
			if resp.Header.Get("Content-Type") != wire.ProblemContentType || json.Unmarshal([]byte(body), &p) != nil ||
				p.Status != 400 || p.Detail == "" || p.RequestID != resp.Header.Get("X-Request-Id") {
				t.Errorf("not a problem body: %s %q", resp.Header.Get("Content-Type"), body)
			}
			seen := fe.subjects()
			wantSeen := "h.marker.GET"
			if first {
				wantSeen = "h.first.GET h.marker.GET"
			}
			if strings.Join(seen, " ") != wantSeen {
				t.Errorf("the workers got %q, want %q", seen, wantSeen)
			}
		})
	}
}

// TestGoodFraming: streams whose framing is sound are served in full and
// in order, pipelined on one connection, whatever their framing.
func TestGoodFraming(t *testing.T) {
	fe := newFramingEnv(t)
	stream := "POST /h/1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello" +
		// Leading CRLF after a POST, tolerated by RFC 9112 section 2.2.
		"\r\nPOST /h/2 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n" +
		"POST /h/3 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nxyz" +
		"GET /h/4 HTTP/1.1\r\nHost: h\r\nX-Looks-Like: Content-Length: 9\r\n\r\n" +
		"POST /h/5 HTTP/1.1\r\nHost: h\r\nContent-Length: 35\r\n\r\nTransfer-Encoding: chunked\r\n0\r\n\r\n\r\n" +
		"GET /h/6 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
	resps, bodies, _ := fe.exchange(stream)
	want := []string{"hello", "abc0123456789", "xyz", "", "Transfer-Encoding: chunked\r\n0\r\n\r\n\r\n", ""}
	if len(resps) != len(want) {
		t.Fatalf("%d responses, want %d: %q", len(resps), len(want), bodies)
	}
	for i, resp := range resps {
		if resp.StatusCode != 200 || bodies[i] != want[i] {
			t.Errorf("response %d: %d %q, want 200 %q", i+1, resp.StatusCode, bodies[i], want[i])
		}
	}
	seen := fe.subjects()
	if got := strings.Join(seen, " "); got != "h.1.POST h.2.POST h.3.POST h.4.GET h.5.POST h.6.GET h.marker.GET" {
		t.Errorf("the workers got %s", got)
	}
}

// TestFramingByteByByte: the check does not depend on how the bytes are
// split into reads.
func TestFramingByteByByte(t *testing.T) {
	fe := newFramingEnv(t)
	for _, tc := range []struct {
		raw    string
		status []int
	}{
		{"POST /h/1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\nGET /h/2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", []int{200, 200}},
		{"GET /h/1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /h/bad HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, []int{200, 400}},
	} {
		c, err := net.Dial("tcp", fe.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		c.(*net.TCPConn).SetNoDelay(true)
		for i := 0; i < len(tc.raw); i++ {
			if _, err := c.Write([]byte{tc.raw[i]}); err != nil {
				break // the server may close once it has refused
			}
		}
		br := bufio.NewReader(c)
		var got []int
		for {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				break
			}
			io.Copy(io.Discard, resp.Body)
			got = append(got, resp.StatusCode)
		}
		c.Close()
		if len(got) != len(tc.status) || got[0] != tc.status[0] || got[len(got)-1] != tc.status[len(tc.status)-1] {
			t.Errorf("statuses %v, want %v", got, tc.status)
		}
	}
	if seen := fe.subjects(); strings.Contains(strings.Join(seen, " "), "smuggled") || strings.Contains(strings.Join(seen, " "), "bad") {
		t.Errorf("the workers got %q", seen)
	}
}
