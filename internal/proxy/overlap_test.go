package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// TestOverlappingRoutesInOneWorker: "GET /files/{path...}" and
// "POST /files/{path...}" both subscribe files.>, beside files.special.GET.
// NATS hands each message to whichever subscription it likes, so every
// request is sent many times: each must reach its own handler.
func TestOverlappingRoutesInOneWorker(t *testing.T) {
	e := newEnv(t, proxy.Config{})
	e.worker("files", map[string]http.HandlerFunc{
		"GET /files/{path...}":  func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "get ", r.PathValue("path")) },
		"POST /files/{path...}": func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "post ", r.PathValue("path")) },
		"GET /files/special":    func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "special") },
		"GET /files/{dir}/meta": func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "meta ", r.PathValue("dir")) },
	})
	tests := []struct{ method, path, want string }{
		{"GET", "/files/a/b.txt", "get a/b.txt"},
		{"POST", "/files/a/b.txt", "post a/b.txt"},
		{"GET", "/files/special", "special"},
		{"POST", "/files/special", "post special"},
		{"GET", "/files/special/more", "get special/more"},
		{"GET", "/files/docs/meta", "meta docs"},
		{"POST", "/files/docs/meta", "post docs/meta"},
		{"HEAD", "/files/special", ""},
		{"HEAD", "/files/a/b.txt", ""},
	}
	for range 15 {
		for _, tc := range tests {
			resp, body := e.do(tc.method, tc.path, "", nil)
			if resp.StatusCode != 200 || body != tc.want {
				t.Fatalf("%s %s: %d %q, want %q", tc.method, tc.path, resp.StatusCode, body, tc.want)
			}
		}
	}
	resp, body := e.do("DELETE", "/files/x", "", nil)
	checkProblem(t, resp, body, http.StatusMethodNotAllowed)
	if got := resp.Header.Get("Allow"); got != "GET, HEAD, POST" {
		t.Errorf("Allow %q", got)
	}
}

// TestDisjointWorkersOverlappingSubjects: docs.> (worker a, GET only)
// overlaps docs.upload.POST (worker b). A message for b's route also
// reaches a, which must leave it alone: once b is gone, nothing answers
// and the client gets 504, not an answer from a.
func TestDisjointWorkersOverlappingSubjects(t *testing.T) {
	e := newEnv(t, proxy.Config{Routes: []proxy.RouteConfig{{Match: "POST /docs/upload", Timeout: 300 * time.Millisecond}}})
	e.worker("a", map[string]http.HandlerFunc{
		"GET /docs/{path...}": func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "a ", r.PathValue("path")) },
	})
	stopB := e.worker("b", map[string]http.HandlerFunc{
		"POST /docs/upload": func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "b") },
	})
	for range 20 {
		if resp, body := e.do("POST", "/docs/upload", "x", nil); resp.StatusCode != 200 || body != "b" {
			t.Fatalf("POST /docs/upload: %d %q", resp.StatusCode, body)
		}
		if resp, body := e.do("GET", "/docs/upload", "", nil); resp.StatusCode != 200 || body != "a upload" {
			t.Fatalf("GET /docs/upload: %d %q", resp.StatusCode, body)
		}
	}
	stopB()
	resp, body := e.do("POST", "/docs/upload", "x", nil)
	checkProblem(t, resp, body, http.StatusGatewayTimeout)
}

// TestMicroService: a worker written with nats.go's micro package alone
// answers through the gateway, routed by its endpoint subject, and its
// service errors become HTTP errors.
func TestMicroService(t *testing.T) {
	e := newEnv(t, proxy.Config{})
	nc := natstest.Connect(t, e.ns)
	svc, err := micro.AddService(nc, micro.Config{
		Name:    "sum",
		Version: "1.0.0",
		Endpoint: &micro.EndpointConfig{
			Subject: "sum.POST",
			Handler: micro.HandlerFunc(func(req micro.Request) {
				var in struct{ A, B *int }
				switch {
				case json.Unmarshal(req.Data(), &in) != nil || in.A == nil || in.B == nil:
					req.Error("422", "bad input", nil)
				case *in.A < 0:
					req.Error("700", "negative", nil)
				case *in.B < 0:
					req.Error("409", "conflict", []byte(`{"why":"b"}`), micro.WithHeaders(micro.Headers{"Content-Type": {"application/json"}}))
				case *in.A == 0 && *in.B == 0:
					req.Error("zero", "not a number code", nil)
				default:
					req.Respond([]byte(strconv.Itoa(*in.A+*in.B)), micro.WithHeaders(micro.Headers{"X-Sum": {"yes"}}))
				}
			}),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop() })
	e.waitRoutes("POST /sum")
	tests := []struct {
		name, body string
		status     int
		want       string // body, or the problem's detail
	}{
		{"answer", `{"a":2,"b":3}`, 200, "5"},
		{"error 422", `{"a":2}`, 422, "bad input"},
		{"code outside 400-599", `{"a":-1,"b":1}`, 500, "negative"},
		{"code not a number", `{"a":0,"b":0}`, 500, "not a number code"},
		{"error with a body", `{"a":1,"b":-1}`, 409, `{"why":"b"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.do("POST", "/sum", tc.body, nil)
			switch {
			case tc.status == 200:
				if resp.StatusCode != 200 || body != tc.want || resp.Header.Get("X-Sum") != "yes" {
					t.Errorf("got %d %q %v", resp.StatusCode, body, resp.Header)
				}
			case tc.want[0] == '{':
				if resp.StatusCode != tc.status || body != tc.want || resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("got %d %q %v", resp.StatusCode, body, resp.Header)
				}
			default:
				if p := checkProblem(t, resp, body, tc.status); p.Detail != tc.want {
					t.Errorf("detail %q, want %q", p.Detail, tc.want)
				}
			}
			for k := range resp.Header {
				if len(k) > 5 && (k[:5] == "Nats-" || k[:6] == "Metro-") {
					t.Errorf("header %s reached the client", k)
				}
			}
		})
	}
	resp, body := e.do("GET", "/sum", "", nil)
	checkProblem(t, resp, body, http.StatusMethodNotAllowed)
	if resp.Header.Get("Allow") != "POST" {
		t.Errorf("Allow %q", resp.Header.Get("Allow"))
	}
}

// TestReplicasShareLoad: two replicas of one worker form a queue group;
// 100 requests are spread over both.
func TestReplicasShareLoad(t *testing.T) {
	e := newEnv(t, proxy.Config{})
	for _, id := range []string{"r1", "r2"} {
		e.worker("shared", map[string]http.HandlerFunc{
			"GET /who": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, id) },
		})
	}
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 10)
	var errs []error
	for range 100 {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			resp, err := http.Get(e.srv.URL + "/who")
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			counts[fmt.Sprint(resp.StatusCode, " ", string(b))]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if counts["200 r1"] == 0 || counts["200 r2"] == 0 || counts["200 r1"]+counts["200 r2"] != 100 {
		t.Errorf("answers %v: want 100 shared by r1 and r2", counts)
	}
	t.Logf("answers %v", counts)
}

// TestTrailingSlash: /a/1 and /a/1/ are one subject, so the worker serves
// either form with whichever of its routes fits, instead of answering
// ServeMux's redirect (which would come back on the same subject) or
// leaving the client to time out.
func TestTrailingSlash(t *testing.T) {
	e := newEnv(t, proxy.Config{Timeout: 10 * time.Second})
	e.worker("slash", map[string]http.HandlerFunc{
		"GET /a/{x}":        func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "a ", r.PathValue("x")) },
		"POST /b/{rest...}": func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "b %q", r.PathValue("rest")) },
		"GET /tree/":        func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "tree ", r.URL.Path) },
		"GET /{$}":          func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "root") },
		"GET /exact/{$}":    func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "exact ", r.URL.Path) },
	})
	tests := []struct{ method, path, want string }{
		{"GET", "/a/1", "a 1"},
		{"GET", "/a/1/", "a 1"},
		{"GET", "//a//1//", "a 1"},
		{"POST", "/b", `b ""`},
		{"POST", "/b/", `b ""`},
		{"POST", "/b/c/", `b "c/"`},
		{"GET", "/tree", "tree /tree/"},
		{"GET", "/tree/", "tree /tree/"},
		{"GET", "/tree/leaf", "tree /tree/leaf"},
		{"GET", "/", "root"},
		{"GET", "//", "root"},
		{"GET", "/exact", "exact /exact/"},
		{"GET", "/exact/", "exact /exact/"},
	}
	for _, tc := range tests {
		resp, body := e.do(tc.method, tc.path, "", nil)
		if resp.StatusCode != 200 || body != tc.want {
			t.Errorf("%s %s: %d %q, want %q", tc.method, tc.path, resp.StatusCode, body, tc.want)
		}
	}
}

// TestPrefix: with a subject prefix, requests travel under it, a worker
// under another prefix is not routed, and a path may start with _INBOX
// (its subject cannot reach the inboxes then).
func TestPrefix(t *testing.T) {
	e := newEnv(t, proxy.Config{Prefix: "api"})
	spy := e.spy()
	e.worker("users", map[string]http.HandlerFunc{
		"GET /users/{id}": func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "user ", r.PathValue("id")) },
		"GET /_INBOX/{x}": func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "inbox ", r.PathValue("x")) },
	})
	stray := metro.NewWorker("stray", metro.WithNATSURL(e.ns.ClientURL()), metro.WithPrefix("web"), metro.WithLogger(quiet))
	stray.HandleFunc("GET /stray", func(w http.ResponseWriter, r *http.Request) {})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stray.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-stray.Ready()

	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/users/1", 200, "user 1"},
		{"/_INBOX/x", 200, "inbox x"},
		{"/stray", 404, ""},
	} {
		resp, body := e.do("GET", tc.path, "", map[string]string{"X-Request-Id": "prefix" + strings.ReplaceAll(tc.path, "/", "-")})
		if tc.status != 200 {
			checkProblem(t, resp, body, tc.status)
			continue
		}
		if resp.StatusCode != tc.status || body != tc.body {
			t.Errorf("%s: %d %q", tc.path, resp.StatusCode, body)
		}
	}
	if !spy.published("prefix-users-1") || spy.subject != "api.users.1.GET" {
		t.Errorf("the request was not published on api.users.1.GET (subject %q)", spy.subject)
	}
	for _, r := range e.gw.Routes() {
		if strings.Contains(r, "stray") {
			t.Errorf("route %q of a worker under another prefix", r)
		}
	}
}
