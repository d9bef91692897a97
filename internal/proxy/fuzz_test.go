package proxy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/proxy"
	"github.com/metropolis-dev/metro/internal/wire"
)

// gatewayStatuses are the answers PROTOCOL.md allows the gateway, plus 200
// from the test's worker. 503 and 504 are left out on purpose: the worker
// runs and answers at once, so either would mean that the gateway routed a
// request its worker does not take (route table and ServeMux disagreeing).
var gatewayStatuses = map[int]bool{200: true, 400: true, 404: true, 405: true, 413: true, 414: true}

// FuzzGateway gives ServeHTTP arbitrary methods, targets, a header and a
// body, as net/http would deliver them: the gateway must not panic, must
// answer one of the documented statuses, and its own answers must be
// problem JSON carrying the request id it answered with.
func FuzzGateway(f *testing.F) {
	// A slow discovery interval widens the window in which the gateway
	// counts a route's worker as live (three rounds), so a machine busy
	// with fuzzing cannot make a running worker look gone.
	e := newEnv(f, proxy.Config{MaxBody: 2048, Timeout: 5 * time.Second, DiscoveryInterval: time.Second})
	echo := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprint(w, len(b))
	}
	e.worker("fuzz", map[string]http.HandlerFunc{
		"GET /a/{x}":        echo,
		"POST /b/{rest...}": echo,
		"/c/{x}":            echo,
		"PUT /d/{x}/e/{$}":  echo,
		"DELETE /f/x~_-":    echo,
	})
	for _, s := range []struct {
		method, target, hname, hval string
		body                        []byte
		chunked                     bool
	}{
		{"GET", "/a/1", "X-Request-Id", "abc", nil, false},
		{"POST", "/b/x/y/z?q=1", "Content-Type", "text/plain", []byte("hello"), false},
		{"POST", "/b/x", "X-Forwarded-For", "1.2.3.4", bytes.Repeat([]byte("x"), 3000), true},
		{"PATCH", "/c/%2e%2e", "Connection", "X-A", nil, false},
		{"get", "/a/1", "Metro-Status", "500", nil, false},
		{"M-SEARCH", "/", "", "", nil, false},
		{"GET", "/_INBOX/x", "Traceparent", "00-x", nil, false},
		{"PUT", "/d/1/e/", "X-Request-Id", "a b", []byte{0, 1, 2}, false},
		{"DELETE", "/f/x~_-", "", "", nil, false},
		{"GET", "/a/%00", "X-A", "\t", nil, false},
		{"OPTIONS", "*", "", "", nil, false},
		{"GET", "//a//1//", "", "", nil, false},
		{"GET", "/h", "", "", nil, false},
		{"HEAD", "/h/", "", "", nil, false},
		{"PATCH", "/g", "", "", nil, false},
		{"GET", "/g/x/", "", "", nil, false},
		{"POST", "/x/%2F/z/", "", "", nil, false},
		{"HEAD", "/a/1/b", "", "", nil, false},
		{"GET", "/a/" + string(bytes.Repeat([]byte("%21"), 1400)), "", "", nil, false},
	} {
		f.Add(s.method, s.target, s.hname, s.hval, s.body, s.chunked)
	}
	f.Fuzz(func(t *testing.T, method, target, hname, hval string, body []byte, chunked bool) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !validHeader(hname, hval) || method == "" {
			return // net/http answers these itself (400) before any handler
		}
		r := &http.Request{
			Method: method, URL: u, RequestURI: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Host: "fuzz", RemoteAddr: "192.0.2.1:1234",
			Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
		}
		if chunked {
			r.ContentLength, r.TransferEncoding = -1, []string{"chunked"}
		}
		if hname != "" {
			k := textproto.CanonicalMIMEHeaderKey(hname)
			r.Header[k] = append(r.Header[k], hval)
		}
		rec := httptest.NewRecorder()
		e.gw.ServeHTTP(rec, r)
		res := rec.Result()
		rid := res.Header.Get("X-Request-Id")
		if !wire.ValidRequestID(rid) {
			t.Errorf("X-Request-Id %q", rid)
		}
		if !gatewayStatuses[res.StatusCode] {
			t.Fatalf("%q %q: status %d is not a documented answer", method, target, res.StatusCode)
		}
		if res.StatusCode == 200 {
			if want := fmt.Sprint(len(body)); rec.Body.String() != want {
				t.Errorf("%q %q: body %q, want %q", method, target, rec.Body.String(), want)
			}
			return
		}
		var p wire.Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("%q %q: %d with body %q: %v", method, target, res.StatusCode, rec.Body.String(), err)
		}
		if p.Status != res.StatusCode || p.RequestID != rid || res.Header.Get("Content-Type") != wire.ProblemContentType {
			t.Errorf("%q %q: %d, problem %+v, headers %v", method, target, res.StatusCode, p, res.Header)
		}
	})
}

// validHeader reports whether net/http would deliver this header field:
// a token name and a value without control bytes other than tab.
func validHeader(name, value string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
