package proxy_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// rawPublisher is a client speaking the NATS protocol by hand, for reply
// header blocks that nats.go would never write.
type rawPublisher struct {
	t testing.TB
	c net.Conn
}

func (e *env) rawPublisher() *rawPublisher {
	e.t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.ns.ClientURL(), "nats://"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := fmt.Fprint(c, "CONNECT {\"verbose\":false,\"headers\":true,\"protocol\":1}\r\nPING\r\n"); err != nil {
		e.t.Fatal(err)
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			e.t.Fatalf("raw NATS client: %v", err)
		}
		if strings.HasPrefix(line, "-ERR") {
			e.t.Fatalf("raw NATS client: %s", line)
		}
		if strings.HasPrefix(line, "PONG") {
			return &rawPublisher{t: e.t, c: c}
		}
	}
}

// hpub publishes hdr (the whole header block, as sent) and payload to subj.
func (p *rawPublisher) hpub(subj, hdr, payload string) {
	if _, err := fmt.Fprintf(p.c, "HPUB %s %d %d\r\n%s%s\r\n", subj, len(hdr), len(hdr)+len(payload), hdr, payload); err != nil {
		p.t.Error(err)
	}
}

// TestUnusableReplies: a reply that cannot become an HTTP response as it
// stands is a 502, not a 200 with its header dropped or passed on raw.
func TestUnusableReplies(t *testing.T) {
	tests := []struct {
		name, hdr, payload string
	}{
		{"line without colon", "NATS/1.0\r\nX-Ok: 1\r\nbroken line\r\n\r\n", "body"},
		{"not a NATS header block", "HTTP/1.1 200 OK\r\nX-Ok: 1\r\n\r\n", "body"},
		{"status line too short", "NATS/1.0 20\r\n\r\n", "body"},
		{"no blank line", "NATS/1.0\r\nX-Ok: 1\r\n", "body"},
		{"NUL in a value", "NATS/1.0\r\nX-Evil: a\x00b\r\n\r\n", "body"},
		{"control byte in a value", "NATS/1.0\r\nX-Evil: a\x07b\r\n\r\n", "body"},
		{"space in a name", "NATS/1.0\r\nX Evil: 1\r\n\r\n", "body"},
		{"control byte in a name", "NATS/1.0\r\nX-\x01: 1\r\n\r\n", "body"},
		{"request timeout status", "NATS/1.0 408 Request Timeout\r\n\r\n", ""},
		{"no messages status", "NATS/1.0 404 No Messages\r\n\r\n", ""},
	}
	e := newEnv(t, proxy.Config{Routes: []proxy.RouteConfig{{Match: "/raw/{n}"}}, Timeout: 20 * time.Second})
	// nats.go reports each header block it cannot decode as an
	// asynchronous error too, printed unless handled.
	e.nc.SetErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})
	// A well-formed reply on the same path passes, so the cases above
	// fail for what they hold.
	const good = "NATS/1.0\r\nX-Ok: 1\r\n\r\n"
	pub := e.rawPublisher()
	sub := natstest.Connect(t, e.ns)
	if _, err := sub.Subscribe("raw.*.GET", func(m *nats.Msg) {
		i, _ := strconv.Atoi(strings.Split(m.Subject, ".")[1])
		if i < len(tests) {
			pub.hpub(m.Reply, tests[i].hdr, tests[i].payload)
		} else {
			pub.hpub(m.Reply, good, "body")
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.do("GET", fmt.Sprintf("/raw/%d", i), "", nil)
			p := checkProblem(t, resp, body, http.StatusBadGateway)
			if resp.Header.Get("X-Ok") != "" || resp.Header.Get("X-Evil") != "" {
				t.Errorf("a header of the bad reply reached the client: %v", resp.Header)
			}
			t.Logf("detail: %s", p.Detail)
		})
	}
	resp, body := e.do("GET", fmt.Sprintf("/raw/%d", len(tests)), "", nil)
	if resp.StatusCode != 200 || body != "body" || resp.Header.Get("X-Ok") != "1" {
		t.Errorf("good reply: %d %v %q", resp.StatusCode, resp.Header, body)
	}
}

// TestHandlerHeadersThatCollide: a handler's own Status and Description
// headers are not NATS's status line. An empty 200 carrying "Status: 503"
// is the handler's answer, not "no responders".
func TestHandlerHeadersThatCollide(t *testing.T) {
	e := newEnv(t, proxy.Config{Timeout: 20 * time.Second})
	e.worker("status", map[string]http.HandlerFunc{
		"GET /status/{code}": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Status", r.PathValue("code"))
			w.Header().Set("Description", "my own header")
			if r.URL.Query().Has("nc") {
				w.WriteHeader(http.StatusNoContent)
			}
		},
	})
	for _, target := range []string{"/status/503", "/status/408", "/status/503?nc"} {
		resp, body := e.do("GET", target, "", nil)
		want := http.StatusOK
		if strings.HasSuffix(target, "?nc") {
			want = http.StatusNoContent
		}
		code := strings.TrimSuffix(strings.TrimPrefix(target, "/status/"), "?nc")
		if resp.StatusCode != want || resp.Header.Get("Status") != code || resp.Header.Get("Description") != "my own header" {
			t.Errorf("%s: status %d, Status %q, Description %q, body %q; want %d with the handler's headers",
				target, resp.StatusCode, resp.Header.Get("Status"), resp.Header.Get("Description"), body, want)
		}
	}
}

// TestHandlerInvalidHeader: a header that HTTP does not allow gets the
// client a 500 at once, not a wait for the timeout.
func TestHandlerInvalidHeader(t *testing.T) {
	e := newEnv(t, proxy.Config{Timeout: 20 * time.Second})
	e.worker("badheader", map[string]http.HandlerFunc{
		"GET /bad/{kind}": func(w http.ResponseWriter, r *http.Request) {
			switch r.PathValue("kind") {
			case "name":
				w.Header()["Bad Name"] = []string{"x"}
			case "colon":
				w.Header()["Bad:Name"] = []string{"x"}
			case "newline":
				w.Header()["X-Split"] = []string{"a\r\nX-Injected: 1"}
			case "nul":
				w.Header()["X-Nul"] = []string{"a\x00b"}
			}
			w.Write([]byte("never seen"))
		},
	})
	for _, kind := range []string{"name", "colon", "newline", "nul"} {
		t.Run(kind, func(t *testing.T) {
			start := time.Now()
			resp, body := e.do("GET", "/bad/"+kind, "", nil)
			checkProblem(t, resp, body, http.StatusInternalServerError)
			if resp.Header.Get("X-Injected") != "" || strings.Contains(body, "never seen") {
				t.Errorf("the bad reply leaked: %v %q", resp.Header, body)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("answered after %s: the client waited for the timeout", d)
			}
		})
	}
}
