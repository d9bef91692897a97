package proxy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/proxy"
)

// TestSlowBody: a body that does not arrive before the server's read
// deadline is answered 408 Request Timeout (RFC 9110 section 15.5.9),
// not 400: the request was fine, the client was slow.
func TestSlowBody(t *testing.T) {
	e := newEnv(t, proxy.Config{})
	e.worker("up", map[string]http.HandlerFunc{
		"POST /up": func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) },
	})
	srv := httptest.NewUnstartedServer(e.gw)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)

	for _, tc := range []struct{ name, framing string }{
		{"with a length", "Content-Length: 100\r\n\r\n0123456789"},
		{"chunked", "Transfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Part of the body, then nothing: the connection stays open.
			fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: x\r\n%s", tc.framing)
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p struct {
				Status int    `json:"status"`
				Detail string `json:"detail"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatalf("%d: body: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != http.StatusRequestTimeout || p.Status != http.StatusRequestTimeout {
				t.Errorf("status %d (problem %d, %q), want 408", resp.StatusCode, p.Status, p.Detail)
			}
		})
	}
}

// TestExpectContinueNotForwarded: the gateway answers Expect: 100-continue
// itself (it reads the whole body before publishing), so a worker never
// sees it and never has anything to continue.
func TestExpectContinueNotForwarded(t *testing.T) {
	e := newEnv(t, proxy.Config{})
	e.worker("echo", map[string]http.HandlerFunc{
		"POST /echo": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "expect=%q body=%s", r.Header.Values("Expect"), b)
		},
	})
	req, err := http.NewRequest("POST", e.srv.URL+"/echo", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Expect", "100-continue")
	tr := &http.Transport{ExpectContinueTimeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if want := `expect=[] body=hello`; resp.StatusCode != 200 || string(b) != want {
		t.Errorf("%d %q, want 200 %q", resp.StatusCode, b, want)
	}
}
