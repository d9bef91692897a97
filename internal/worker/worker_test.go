package worker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/wire"
)

var quiet = slog.New(slog.DiscardHandler)

// run starts w on a connection to ns until the test ends.
func run(t testing.TB, ns *server.Server, w *Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var done <-chan error
	t.Cleanup(func() {
		cancel()
		if done == nil {
			return // start failed the test
		}
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	done = start(ctx, t, w)
}

// start runs w until ctx ends and returns once it is ready, failing t if
// Run returns first; Run's error then arrives on the channel.
func start(ctx context.Context, t testing.TB, w *Worker) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("worker stopped before it was ready: %v", err)
	}
	return done
}

// request builds a request message as the gateway does.
func request(method, path, query string, body string, deadline time.Time) *nats.Msg {
	r := wire.Request{
		Method: method, EscapedPath: path, RawQuery: query, Header: http.Header{"X-Test": {"1"}},
		RequestID: "rid-1", Deadline: deadline, Body: []byte(body),
	}
	subj := strings.ReplaceAll(strings.Trim(path, "/"), "/", ".")
	if subj != "" {
		subj += "."
	}
	return r.Msg(subj + method)
}

// version2 makes m a request from a caller of protocol version 2, which
// reads every reply as one message.
func version2(m *nats.Msg) *nats.Msg {
	m.Header.Set(wire.HeaderVersion, "2")
	return m
}

func handlers() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /users/{id}": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "user "+r.PathValue("id")+" "+r.URL.Query().Get("q"))
		},
		"POST /users": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Location", "/users/7")
			w.Header().Add("X-Multi", "a")
			w.Header().Add("X-Multi", "b")
			w.Header().Set("Metro-Status", "299") // handlers cannot forge the status
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			w.Write(b)
		},
		"GET /html":  func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html><body>hi</body></html>") },
		"GET /empty": func(w http.ResponseWriter, r *http.Request) {},
		"GET /early": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(103)
			w.WriteHeader(204)
			w.WriteHeader(500)
		},
		"GET /panic": func(w http.ResponseWriter, r *http.Request) { panic("no") },
		"GET /abort": func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) },
		"GET /big":   func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 5000)) },
		"GET /files/{p...}": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "file "+r.PathValue("p"))
		},
		"GET /deadline": func(w http.ResponseWriter, r *http.Request) {
			dl, ok := r.Context().Deadline()
			if !ok {
				http.Error(w, "no deadline", 500)
				return
			}
			io.WriteString(w, dl.UTC().Format(time.RFC3339Nano))
		},
	}
}

// TestServeMessage sends request messages straight over NATS, as the
// gateway would, and reads the replies (PROTOCOL.md sections 2 and 3).
func TestServeMessage(t *testing.T) {
	ns := natstest.RunWith(t, &server.Options{MaxPayload: 4096})
	w := New(Options{Name: "users", URL: ns.ClientURL(), Logger: quiet})
	for p, h := range handlers() {
		if err := w.Handle(p, h); err != nil {
			t.Fatal(err)
		}
	}
	run(t, ns, w)
	nc := natstest.Connect(t, ns)
	soon := time.Now().Add(20 * time.Second)
	tests := []struct {
		name   string
		msg    *nats.Msg
		status string // Metro-Status; "" when absent (200)
		header map[string][]string
		body   string
		noHdr  []string
	}{
		{name: "path value and query", msg: request("GET", "/users/42", "q=x", "", soon), body: "user 42 x"},
		{name: "status, headers, body", msg: request("POST", "/users", "", `{"n":1}`, soon), status: "201",
			header: map[string][]string{"Location": {"/users/7"}, "X-Multi": {"a", "b"}, "Content-Type": {"application/json"}},
			body:   `{"n":1}`},
		{name: "content type sniffed as net/http does", msg: request("GET", "/html", "", "", soon),
			header: map[string][]string{"Content-Type": {"text/html; charset=utf-8"}}, body: "<html><body>hi</body></html>"},
		{name: "nothing written", msg: request("GET", "/empty", "", "", soon), noHdr: []string{"Content-Type"}},
		{name: "informational status skipped, first final one kept", msg: request("GET", "/early", "", "", soon), status: "204"},
		{name: "tail", msg: request("GET", "/files/a/b", "", "", soon), body: "file a/b"},
		{name: "HEAD on a GET route", msg: request("HEAD", "/users/1", "", "", soon)},
		{name: "deadline from Metro-Deadline", msg: request("GET", "/deadline", "", "", soon),
			body: time.UnixMilli(soon.UnixMilli()).UTC().Format(time.RFC3339Nano)},
		{name: "reply over max_payload to a caller that reads no streams", msg: version2(request("GET", "/big", "", "", soon)), status: "502",
			header: map[string][]string{"Content-Type": {wire.ProblemContentType}}},
		{name: "panic", msg: request("GET", "/panic", "", "", soon), status: "500",
			header: map[string][]string{"Content-Type": {wire.ProblemContentType}}},
		{name: "handler aborted", msg: request("GET", "/abort", "", "", soon), status: "500",
			header: map[string][]string{"Content-Type": {wire.ProblemContentType}}},
		{name: "malformed subject", msg: &nats.Msg{Subject: "users.a%zz.GET"}, status: "400",
			header: map[string][]string{"Content-Type": {wire.ProblemContentType}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := nc.RequestMsg(tc.msg, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Header.Get(wire.HeaderStatus); got != tc.status {
				t.Errorf("Metro-Status %q, want %q", got, tc.status)
			}
			for k, v := range tc.header {
				if !slices.Equal(m.Header.Values(k), v) {
					t.Errorf("%s = %q, want %q", k, m.Header.Values(k), v)
				}
			}
			for _, k := range tc.noHdr {
				if v := m.Header.Values(k); v != nil {
					t.Errorf("%s = %q, want none", k, v)
				}
			}
			if tc.body != "" && string(m.Data) != tc.body {
				t.Errorf("body %q, want %q", m.Data, tc.body)
			}
			if tc.header["Content-Type"] != nil && tc.header["Content-Type"][0] == wire.ProblemContentType {
				var p wire.Problem
				if err := json.Unmarshal(m.Data, &p); err != nil || p.Detail == "" || p.Status == 0 {
					t.Errorf("problem %q: %v", m.Data, err)
				}
			}
		})
	}
}

// TestUnansweredMessages: a message that none of the worker's routes
// matches by method and path is left for another worker, and so is one
// whose deadline has passed (the gateway has stopped waiting).
func TestUnansweredMessages(t *testing.T) {
	ns := natstest.Run(t)
	w := New(Options{Name: "files", URL: ns.ClientURL(), Logger: quiet})
	for p, h := range handlers() {
		if err := w.Handle(p, h); err != nil {
			t.Fatal(err)
		}
	}
	run(t, ns, w)
	nc := natstest.Connect(t, ns)
	for _, m := range []*nats.Msg{
		request("POST", "/files/a", "", "", time.Now().Add(10*time.Second)), // files.> is subscribed, GET only
		request("GET", "/users/1", "", "", time.Now().Add(-time.Second)),
	} {
		// Waiting for something not to happen: 300ms is plenty for a
		// reply that would come at once.
		_, err := nc.RequestMsg(m, 300*time.Millisecond)
		if !errors.Is(err, nats.ErrTimeout) {
			t.Errorf("%s: %v, want no reply", m.Subject, err)
		}
	}
	if _, err := nc.RequestMsg(request("GET", "/files/a", "", "", time.Now().Add(10*time.Second)), 10*time.Second); err != nil {
		t.Errorf("the worker stopped serving: %v", err)
	}
}

// TestLeadingWildcard: without a prefix, a pattern that starts with a
// wildcard is refused, since "*.>" would also receive every reply inbox
// and $SRV request. Under a prefix it is served, and a message on its
// subscription that is not a metro subject is ignored, not answered.
func TestLeadingWildcard(t *testing.T) {
	h := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.WriteString(rw, r.PathValue("tenant")+" "+r.PathValue("path"))
	})
	for _, p := range []string{"GET /{tenant}/{path...}", "/{tenant}", "PING /{x}"} {
		err := New(Options{Name: "x", Logger: quiet}).Handle(p, h)
		if err == nil || !strings.Contains(err.Error(), "wildcard") {
			t.Errorf("%q without a prefix: %v, want an error about the wildcard", p, err)
		}
	}

	ns := natstest.Run(t)
	// One handler at a time: a reply to the first message would leave
	// before the second one is served.
	w := New(Options{Name: "tenants", URL: ns.ClientURL(), Prefix: "api", Logger: quiet, Concurrency: 1})
	if err := w.Handle("GET /{tenant}/{path...}", h); err != nil {
		t.Fatal(err)
	}
	run(t, ns, w)
	nc := natstest.Connect(t, ns)
	replies := make(chan *nats.Msg, 16)
	if _, err := nc.ChanSubscribe("test-replies.>", replies); err != nil {
		t.Fatal(err)
	}
	send := func(subj, reply string) {
		m := request("GET", "/acme/x", "", "", time.Now().Add(10*time.Second))
		m.Subject, m.Reply = subj, reply
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	// api.*.> matches both; only the second is a metro subject.
	send("api.acme.x", "test-replies.stray")
	send("api.acme.x.GET", "test-replies.metro")
	select {
	case m := <-replies:
		if m.Subject != "test-replies.metro" || string(m.Data) != "acme x" {
			t.Fatalf("first reply on %s: %q; want the metro request's answer only", m.Subject, m.Data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reply to the metro request")
	}
	// Replies leave in order on one connection: a reply to the stray
	// message would have come first, or right behind a flush.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-replies:
		t.Errorf("unexpected reply on %s: %q", m.Subject, m.Data)
	default:
	}
}

// TestDrain: on cancel, a handler in flight finishes and its reply is
// sent before Run returns; then no one takes requests any more.
func TestDrain(t *testing.T) {
	ns := natstest.Run(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	w := New(Options{Name: "slow", URL: ns.ClientURL(), Logger: quiet})
	w.Handle("GET /slow", http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		io.WriteString(rw, "finished")
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := start(ctx, t, w)
	nc := natstest.Connect(t, ns)
	reply := make(chan *nats.Msg, 1)
	go func() {
		m, err := nc.RequestMsg(request("GET", "/slow", "", "", time.Now().Add(20*time.Second)), 20*time.Second)
		if err != nil {
			t.Errorf("in-flight request: %v", err)
		}
		reply <- m
	}()
	<-arrived
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for w.IsReady() {
		if time.Now().After(deadline) {
			t.Fatal("still ready while draining")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned %v with a handler in flight", err)
	default:
	}
	close(release)
	if m := <-reply; m == nil || string(m.Data) != "finished" {
		t.Errorf("reply %v", m)
	}
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, err := nc.RequestMsg(request("GET", "/slow", "", "", time.Now().Add(time.Second)), 5*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("after drain: %v, want no responders", err)
	}
}

// TestHealth: the health listener answers /healthz and /readyz.
func TestHealth(t *testing.T) {
	ns := natstest.Run(t)
	// The worker binds it; a clash would fail Run, not pass the test.
	addr := "127.0.0.1:" + strconv.Itoa(natstest.FreePort(t))
	w := New(Options{Name: "h", URL: ns.ClientURL(), Logger: quiet, HealthAddr: addr})
	w.Handle("GET /x", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	run(t, ns, w)
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + addr + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}

// TestHandleRejects: patterns a subject cannot express, duplicates and
// ServeMux conflicts are errors, not panics.
func TestHandleRejects(t *testing.T) {
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, tc := range []struct{ first, second string }{
		{"", "GET users"},
		{"", "get /users"},
		{"", "GET example.com/users"},
		{"GET /users/{id}", "GET /users/{id}"},
		{"GET /users/{id}", "GET /users/{name}"},
	} {
		w := New(Options{Name: "x", Logger: quiet})
		if tc.first != "" {
			if err := w.Handle(tc.first, h); err != nil {
				t.Fatalf("%q: %v", tc.first, err)
			}
		}
		if err := w.Handle(tc.second, h); err == nil {
			t.Errorf("%q after %q: no error", tc.second, tc.first)
		}
	}
}

// TestStopWhileDisconnected: a worker stopped while its NATS server is
// gone returns at once, without error, instead of waiting out nats.go's
// flush timeouts.
func TestStopWhileDisconnected(t *testing.T) {
	ns := natstest.Run(t)
	w := New(Options{Name: "lonely", URL: ns.ClientURL(), Logger: quiet})
	w.Handle("GET /x", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	ctx, cancel := context.WithCancel(context.Background())
	done := start(ctx, t, w)
	ns.Shutdown()
	deadline := time.Now().Add(10 * time.Second)
	for w.IsReady() {
		if time.Now().After(deadline) {
			t.Fatal("still ready without a server")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	// nats.go's flush timeouts are 10s each; anything near that is the bug.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping took %v", d)
	}
}

// TestRunAgainstAServerThatChecksCredentials: without the credentials the
// server wants, Run fails at once and says why (rather than retrying in
// silence); with them it serves; and when the server later refuses them
// (revoked), Run ends with that reason instead of waiting forever.
func TestRunAgainstAServerThatChecksCredentials(t *testing.T) {
	seed, opts, revoked := natstest.NKeyUserToRevoke(t)
	ns := natstest.RunWith(t, opts)
	newWorker := func(natsOpts ...nats.Option) *Worker {
		w := New(Options{Name: "locked", URL: ns.ClientURL(), Logger: quiet, NATSOptions: natsOpts})
		w.Handle("GET /x", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "x") }))
		return w
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := newWorker().Run(ctx)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") || ctx.Err() != nil {
		t.Fatalf("Run without credentials: %v, want an authorization violation at once", err)
	}

	nkey, err := nats.NkeyOptionFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	done := start(ctx, t, newWorker(nkey, nats.ReconnectWait(10*time.Millisecond)))
	client := natstest.Connect(t, ns, nkey)
	if reply, err := client.RequestMsg(request("GET", "/x", "", "", time.Now().Add(5*time.Second)), 5*time.Second); err != nil || string(reply.Data) != "x" {
		t.Fatalf("request: %v %v", reply, err)
	}

	ns.Shutdown()
	ns.WaitForShutdown()
	natstest.RunWith(t, revoked)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "closed for good") || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
			t.Fatalf("Run: %v, want it closed for good by the authorization violation", err)
		}
	case <-ctx.Done():
		t.Fatal("Run still waiting after the server refused its credentials")
	}
}

// TestRunBeforeNATSIsUp: a worker started before its server waits for it
// without holding up a stop, and serves once the server is there.
func TestRunBeforeNATSIsUp(t *testing.T) {
	port := natstest.FreePort(t)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	newWorker := func() *Worker {
		w := New(Options{Name: "early", URL: url, Logger: quiet, NATSOptions: []nats.Option{nats.ReconnectWait(10 * time.Millisecond)}})
		w.Handle("GET /x", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "x") }))
		return w
	}

	// Stopped while still waiting: Run returns at once, not after a
	// flush timeout (10s).
	w := newWorker()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("Run with no server yet: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("not ready: Run is blocked waiting for the server")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still running after its context ended")
	}

	// Started first, stopped before the server goes away.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	running := start(ctx, t, newWorker())
	ns := natstest.RunWith(t, &server.Options{Port: port})
	client := natstest.Connect(t, ns)
	for deadline := time.Now().Add(20 * time.Second); ; {
		reply, err := client.RequestMsg(request("GET", "/x", "", "", time.Now().Add(time.Second)), time.Second)
		if err == nil && string(reply.Data) == "x" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer once the server was up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-running; err != nil {
		t.Errorf("Run: %v", err)
	}
}
