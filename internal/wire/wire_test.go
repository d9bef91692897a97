package wire_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/subject"
	"github.com/metropolis-dev/metro/internal/wire"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestReadReply(t *testing.T) {
	tests := []struct {
		name   string
		header nats.Header
		body   string
		status int
		want   http.Header // exactly the headers expected
		bad    bool        // ErrBadReply
		detail string      // problem detail of a generated body
	}{
		{name: "plain", body: "ok", status: 200, want: http.Header{}},
		{name: "status", header: nats.Header{"Metro-Status": {"201"}, "Location": {"/x"}}, status: 201, want: http.Header{"Location": {"/x"}}},
		{name: "status name in other case", header: nats.Header{"metro-status": {"404"}}, status: 404, want: http.Header{}},
		{name: "header names canonicalised", header: nats.Header{"x-lower": {"v"}}, status: 200, want: http.Header{"X-Lower": {"v"}}},
		{name: "values keep their order", header: nats.Header{"Set-Cookie": {"a=1", "b=2", "c=3"}}, status: 200,
			want: http.Header{"Set-Cookie": {"a=1", "b=2", "c=3"}}},
		{name: "protocol and hop-by-hop headers dropped", header: nats.Header{
			"Metro-Extra": {"x"}, "Nats-Anything": {"y"}, "Connection": {"close, X-Named"}, "X-Named": {"z"},
			"Keep-Alive": {"5"}, "Transfer-Encoding": {"chunked"}, "Upgrade": {"h2c"}, "Proxy-Authenticate": {"B"},
			"Te": {"trailers"}, "Trailer": {"X-T"}, "X-Kept": {"k"},
		}, status: 200, want: http.Header{"X-Kept": {"k"}}},
		{name: "not a number", header: nats.Header{"Metro-Status": {"abc"}}, bad: true},
		{name: "two digits", header: nats.Header{"Metro-Status": {"99"}}, bad: true},
		{name: "four digits", header: nats.Header{"Metro-Status": {"2000"}}, bad: true},
		{name: "informational", header: nats.Header{"Metro-Status": {"101"}}, bad: true},
		{name: "over 599", header: nats.Header{"Metro-Status": {"600"}}, bad: true},
		{name: "padded", header: nats.Header{"Metro-Status": {" 200"}}, bad: true},
		{name: "signed", header: nats.Header{"Metro-Status": {"+20"}}, bad: true},
		{name: "service error without body", header: nats.Header{"Nats-Service-Error-Code": {"422"}, "Nats-Service-Error": {"bad input"}},
			status: 422, want: http.Header{"Content-Type": {wire.ProblemContentType}}, detail: "bad input"},
		{name: "service error code under 400", header: nats.Header{"Nats-Service-Error-Code": {"302"}, "Nats-Service-Error": {"moved"}},
			status: 500, want: http.Header{"Content-Type": {wire.ProblemContentType}}, detail: "moved"},
		{name: "service error code over 599", header: nats.Header{"Nats-Service-Error-Code": {"700"}, "Nats-Service-Error": {"odd"}},
			status: 500, want: http.Header{"Content-Type": {wire.ProblemContentType}}, detail: "odd"},
		{name: "service error code not a number", header: nats.Header{"Nats-Service-Error-Code": {"E42"}, "Nats-Service-Error": {"odd"}},
			status: 500, want: http.Header{"Content-Type": {wire.ProblemContentType}}, detail: "odd"},
		{name: "service error with body", header: nats.Header{"Nats-Service-Error-Code": {"409"}, "Nats-Service-Error": {"c"}, "Content-Type": {"application/json"}},
			body: `{"c":1}`, status: 409, want: http.Header{"Content-Type": {"application/json"}}},
		{name: "Metro-Status wins over a service error", header: nats.Header{"Metro-Status": {"201"}, "Nats-Service-Error-Code": {"500"}},
			body: "made", status: 201, want: http.Header{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &nats.Msg{Subject: "_INBOX.x", Header: tc.header, Data: []byte(tc.body)}
			rep, err := wire.ReadReply(m, "rid-9", nil)
			if tc.bad {
				if !errors.Is(err, wire.ErrBadReply) {
					t.Fatalf("err %v, want ErrBadReply", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rep.Status != tc.status {
				t.Errorf("status %d, want %d", rep.Status, tc.status)
			}
			got := rep.Header
			if got == nil {
				got = http.Header{}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("headers %v, want %v", got, tc.want)
			}
			if tc.detail == "" {
				if string(rep.Body) != tc.body {
					t.Errorf("body %q, want %q", rep.Body, tc.body)
				}
				return
			}
			var p wire.Problem
			if err := json.Unmarshal(rep.Body, &p); err != nil {
				t.Fatalf("body %q: %v", rep.Body, err)
			}
			if p.Status != tc.status || p.Detail != tc.detail || p.RequestID != "rid-9" || p.Title != http.StatusText(tc.status) {
				t.Errorf("problem %+v", p)
			}
		})
	}
}

// TestReadReplyInto: headers are added to the map given, which is left
// alone when the reply is malformed.
func TestReadReplyInto(t *testing.T) {
	dst := http.Header{"X-Request-Id": {"rid"}}
	rep, err := wire.ReadReply(&nats.Msg{Header: nats.Header{"X-A": {"1"}}}, "rid", dst)
	if err != nil {
		t.Fatal(err)
	}
	if dst.Get("X-A") != "1" || dst.Get("X-Request-Id") != "rid" || rep.Header.Get("X-A") != "1" {
		t.Errorf("dst %v, reply headers %v", dst, rep.Header)
	}
	dst = http.Header{}
	if _, err := wire.ReadReply(&nats.Msg{Header: nats.Header{"Metro-Status": {"x"}, "X-A": {"1"}}}, "rid", dst); err == nil || len(dst) != 0 {
		t.Errorf("malformed reply: err %v, dst %v", err, dst)
	}
}

// request is a rich request, as a browser behind a proxy sends it.
func request() *wire.Request {
	return &wire.Request{
		Method:      "POST",
		EscapedPath: "/users/a%20b/",
		RawQuery:    "x=1&y=2",
		Header: http.Header{
			"Accept":              {"application/json", "text/plain"},
			"Connection":          {"keep-alive, X-Hop"},
			"X-Hop":               {"named in Connection"},
			"Keep-Alive":          {"timeout=5"},
			"Proxy-Authorization": {"Basic eA=="},
			"Te":                  {"trailers"},
			"Trailer":             {"X-T"},
			"Transfer-Encoding":   {"chunked"},
			"Upgrade":             {"websocket"},
			"Metro-Status":        {"500"},
			"Metro-Method":        {"DELETE"},
			"Metro-Anything":      {"x"},
			"Traceparent":         {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
			"X-Forwarded-For":     {"6.6.6.6"},
			"User-Agent":          {"test"},
			"Cookie":              {"a=1"},
		},
		RequestID: "rid-1",
		Deadline:  time.UnixMilli(1767225600123),
		Body:      []byte(`{"name":"x"}`),
		Forwarded: &wire.Forwarded{For: "203.0.113.7, 127.0.0.1", Host: "shop.example", Proto: "https"},
		Route:     "POST users.POST",
		Service:   "users",
	}
}

// TestRequestMsg compares the request message with a golden rendering
// (subject, headers sorted, body), so any change a worker could notice
// shows in review. Run with -update to rewrite it.
func TestRequestMsg(t *testing.T) {
	tests := []struct {
		name string
		req  func() *wire.Request
	}{
		{"rich", request},
		{"bare", func() *wire.Request {
			return &wire.Request{Method: "GET", EscapedPath: "/", Header: http.Header{}, RequestID: "r"}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.req()
			subj, err := subject.FromPath("", r.Method, r.EscapedPath)
			if err != nil {
				t.Fatal(err)
			}
			m := r.Msg(subj)
			var b strings.Builder
			fmt.Fprintf(&b, "subject %s\n", m.Subject)
			keys := make([]string, 0, len(m.Header))
			for k := range m.Header {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				for _, v := range m.Header[k] {
					fmt.Fprintf(&b, "%s: %s\n", k, v)
				}
			}
			fmt.Fprintf(&b, "\n%s\n", m.Data)
			golden := filepath.Join("testdata", "request-"+tc.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if b.String() != string(want) {
				t.Errorf("request message changed:\n%s\nwant:\n%s", b.String(), want)
			}
		})
	}
}

// TestRequestMsgKeepsCallerHeader: building a message does not change the
// caller's header map (the gateway's is the client's request header).
func TestRequestMsgKeepsCallerHeader(t *testing.T) {
	r := request()
	before := fmt.Sprint(r.Header)
	r.Msg("users.a%20b.POST")
	if fmt.Sprint(r.Header) != before {
		t.Errorf("header changed:\n%s\nwas\n%s", fmt.Sprint(r.Header), before)
	}
}

func TestRequestID(t *testing.T) {
	long := strings.Repeat("x", 128)
	for _, tc := range []struct {
		id   string
		keep bool
	}{
		{"abc", true}, {"AZaz09-_.:+/=", true}, {long, true}, {"a", true},
		{long + "x", false}, {"", false}, {"a b", false}, {"a;b", false}, {"a\nb", false}, {"\u00e9", false}, {"a,b", false},
	} {
		got := wire.RequestID(tc.id)
		if tc.keep != (got == tc.id) || wire.ValidRequestID(tc.id) != tc.keep {
			t.Errorf("RequestID(%q) = %q, keep %v", tc.id, got, tc.keep)
		}
		if !tc.keep {
			if b, err := hex.DecodeString(got); err != nil || len(b) != 16 {
				t.Errorf("new id %q is not 128 bits in hex", got)
			}
		}
	}
	if a, b := wire.NewRequestID(), wire.NewRequestID(); a == b {
		t.Error("two new ids are equal")
	}
}

func TestDeadline(t *testing.T) {
	for _, tc := range []struct {
		v  []string
		ms int64
		ok bool
	}{
		{[]string{"1767225600123"}, 1767225600123, true},
		{nil, 0, false},
		{[]string{""}, 0, false},
		{[]string{"-5"}, 0, false},
		{[]string{"0"}, 0, false},
		{[]string{"12x"}, 0, false},
		{[]string{"99999999999999999999999"}, 0, false},
	} {
		h := nats.Header{}
		if tc.v != nil {
			h["metro-deadline"] = tc.v // any case, as other clients send it
		}
		d, ok := wire.Deadline(h)
		if ok != tc.ok || ok && d.UnixMilli() != tc.ms {
			t.Errorf("Deadline(%q) = %v %v", tc.v, d, ok)
		}
	}
}

func TestErrorStatus(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
	}{
		{nats.ErrNoResponders, 503},
		{fmt.Errorf("request: %w", nats.ErrNoResponders), 503},
		{nats.ErrTimeout, 504},
		{context.DeadlineExceeded, 504},
		{nats.ErrConnectionClosed, 503},
		{nats.ErrConnectionReconnecting, 503},
		{nats.ErrConnectionDraining, 503},
		{nats.ErrDisconnected, 503},
		{nats.ErrMaxPayload, 413},
		{fmt.Errorf("x: %w", wire.ErrBadReply), 502},
		{errors.New("anything else"), 502},
	} {
		if got, detail := wire.ErrorStatus(tc.err); got != tc.status || detail == "" {
			t.Errorf("ErrorStatus(%v) = %d %q, want %d", tc.err, got, detail, tc.status)
		}
	}
}

func TestPathStatus(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"get", "/a", 405},
		{"GET", "/" + strings.Repeat("a", 4097), 414},
		{"GET", strings.Repeat("/a", 65), 414},
		{"GET", "/a/..", 400},
		{"GET", "/a/%zz", 400},
	} {
		_, err := subject.FromPath("", tc.method, tc.path)
		if err == nil {
			t.Fatalf("%s %s: no error", tc.method, tc.path)
		}
		if got := wire.PathStatus(err); got != tc.status {
			t.Errorf("%s %.20s: %d, want %d", tc.method, tc.path, got, tc.status)
		}
	}
}

func TestWriteProblem(t *testing.T) {
	for _, tc := range []struct {
		status, retry int
	}{{503, 1}, {404, 0}, {504, 0}} {
		rec := newRecorder()
		wire.WriteProblem(rec, tc.status, "why", "rid", tc.retry)
		var p wire.Problem
		if err := json.Unmarshal(rec.body, &p); err != nil {
			t.Fatal(err)
		}
		want := wire.Problem{Type: "about:blank", Title: http.StatusText(tc.status), Status: tc.status, Detail: "why", RequestID: "rid"}
		if p != want || rec.code != tc.status || rec.h.Get("Content-Type") != wire.ProblemContentType {
			t.Errorf("%d: %+v %d %v", tc.status, p, rec.code, rec.h)
		}
		if got := rec.h.Get("Retry-After"); (tc.retry > 0) != (got != "") {
			t.Errorf("%d: Retry-After %q", tc.status, got)
		}
	}
}

type recorder struct {
	h    http.Header
	code int
	body []byte
}

func newRecorder() *recorder                    { return &recorder{h: http.Header{}} }
func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) WriteHeader(code int)        { r.code = code }
func (r *recorder) Write(p []byte) (int, error) { r.body = append(r.body, p...); return len(p), nil }

// FuzzReadReply: any reply is either refused as malformed or read into a
// status of 200 to 599 with no protocol or hop-by-hop header left.
func FuzzReadReply(f *testing.F) {
	f.Add("Metro-Status", "201", "X-A", "1", []byte("body"))
	f.Add("Nats-Service-Error-Code", "422", "Nats-Service-Error", "bad", []byte(nil))
	f.Add("metro-status", "9999", "Connection", "X-A", []byte("x"))
	f.Add("Nats-Service-Error-Code", "-1", "Keep-Alive", "1", []byte(""))
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string, body []byte) {
		m := &nats.Msg{Header: nats.Header{k1: {v1}, k2: {v2}}, Data: body}
		rep, err := wire.ReadReply(m, "rid", nil)
		if err != nil {
			if !errors.Is(err, wire.ErrBadReply) {
				t.Fatalf("error %v is not ErrBadReply", err)
			}
			return
		}
		if rep.Status < 200 || rep.Status > 599 {
			t.Fatalf("status %d", rep.Status)
		}
		for k := range rep.Header {
			if strings.HasPrefix(k, "Metro-") || strings.HasPrefix(k, "Nats-") ||
				slices.Contains([]string{"Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}, k) {
				t.Fatalf("header %s kept", k)
			}
		}
	})
}

func BenchmarkReadReply(b *testing.B) {
	m := &nats.Msg{
		Subject: "_INBOX.abc.1.0",
		Header:  nats.Header{"Content-Type": {"application/json"}, "Metro-Status": {"201"}, "Location": {"/users/7"}},
		Data:    []byte(`{"id":7,"name":"x"}`),
	}
	b.ReportAllocs()
	for b.Loop() {
		dst := make(http.Header, 4)
		if _, err := wire.ReadReply(m, "rid", dst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRequestMsg(b *testing.B) {
	r := request()
	b.ReportAllocs()
	for b.Loop() {
		r.Msg("users.a%20b.POST")
	}
}
