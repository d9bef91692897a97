package worker

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/wire"
)

// gated is a handler that records which ids ran, in order, and holds the
// request for id "a" until release is closed.
type gated struct {
	mu      sync.Mutex
	ran     []string
	started chan struct{}
	release chan struct{}
}

func newGated() *gated {
	return &gated{started: make(chan struct{}), release: make(chan struct{})}
}

func (g *gated) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	g.mu.Lock()
	g.ran = append(g.ran, id)
	g.mu.Unlock()
	if id == "a" {
		close(g.started)
		<-g.release
	}
	io.WriteString(rw, id)
}

func (g *gated) order() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.ran)
}

// metricValue reads one sample of the worker's /metrics on addr.
func metricValue(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// TestExpiredRequestsAreSkipped: requests whose Metro-Deadline passes
// while they wait for a busy handler never reach it (the gateway has
// answered 504 and forgotten them), and are counted; the next live
// request is served at once.
func TestExpiredRequestsAreSkipped(t *testing.T) {
	ns := natstest.Run(t)
	addr := "127.0.0.1:" + strconv.Itoa(natstest.FreePort(t))
	g := newGated()
	w := New(Options{Name: "one", URL: ns.ClientURL(), Logger: quiet, Concurrency: 1, HealthAddr: addr})
	if err := w.Handle("GET /work/{id}", g); err != nil {
		t.Fatal(err)
	}
	run(t, ns, w)
	nc := natstest.Connect(t, ns)

	first := make(chan error, 1)
	go func() {
		_, err := nc.RequestMsg(request("GET", "/work/a", "", "", time.Now().Add(30*time.Second)), 30*time.Second)
		first <- err
	}()
	<-g.started
	// Two requests whose clients give up soon, sent while the only
	// handler is busy.
	soon := time.Now().Add(200 * time.Millisecond)
	replies, err := nc.SubscribeSync(nats.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"b", "c"} {
		m := request("GET", "/work/"+id, "", "", soon)
		m.Reply = replies.Subject
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for time.Now().Before(soon.Add(10 * time.Millisecond)) {
		time.Sleep(10 * time.Millisecond)
	}
	close(g.release)
	if err := <-first; err != nil {
		t.Fatalf("first request: %v", err)
	}
	m, err := nc.RequestMsg(request("GET", "/work/d", "", "", time.Now().Add(30*time.Second)), 30*time.Second)
	if err != nil || string(m.Data) != "d" {
		t.Fatalf("live request after the expired ones: %v %v", m, err)
	}
	if got := g.order(); !slices.Equal(got, []string{"a", "d"}) {
		t.Errorf("handlers ran for %v, want [a d]: expired requests must not run", got)
	}
	if m, err := replies.NextMsg(0); err == nil {
		t.Errorf("an expired request was answered: %q", m.Data)
	}
	if n := metricValue(t, addr, "metro_worker_requests_expired_total"); n != 2 {
		t.Errorf("metro_worker_requests_expired_total = %v, want 2", n)
	}
}

// TestShedWhenBacklogFull: with every handler busy and the backlog full
// (by count or by bytes), a request is answered 503 with Retry-After at
// once instead of waiting unanswered for its client's timeout; what was
// queued is served in order once a handler is free; a request for
// another worker's route is left to that worker.
func TestShedWhenBacklogFull(t *testing.T) {
	ns := natstest.Run(t)
	addr := "127.0.0.1:" + strconv.Itoa(natstest.FreePort(t))
	g := newGated()
	w := New(Options{Name: "one", URL: ns.ClientURL(), Logger: quiet, Concurrency: 1,
		MaxPending: 2, MaxPendingBytes: 4096, HealthAddr: addr})
	if err := w.Handle("GET /work/{id}", g); err != nil {
		t.Fatal(err)
	}
	run(t, ns, w)
	nc := natstest.Connect(t, ns)
	later := time.Now().Add(30 * time.Second)

	type result struct {
		id  string
		msg *nats.Msg
		err error
	}
	results := make(chan result, 8)
	send := func(id, body string) {
		m := request("GET", "/work/"+id, "", body, later)
		go func() {
			rep, err := nc.RequestMsg(m, 30*time.Second)
			results <- result{id, rep, err}
		}()
	}
	waitQueued := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for w.backlog.waiting() != n {
			if time.Now().After(deadline) {
				t.Fatalf("backlog holds %d, want %d", w.backlog.waiting(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	checkShed := func(id string) {
		t.Helper()
		r := <-results
		if r.err != nil || r.id != id {
			t.Fatalf("first answer: %s %v, want %s shed", r.id, r.err, id)
		}
		if s := r.msg.Header.Get(wire.HeaderStatus); s != "503" {
			t.Fatalf("%s: Metro-Status %q, want 503", id, s)
		}
		if ra := r.msg.Header.Get("Retry-After"); ra != strconv.Itoa(wire.RetryAfterSeconds) {
			t.Errorf("%s: Retry-After %q", id, ra)
		}
		var p wire.Problem
		if err := json.Unmarshal(r.msg.Data, &p); err != nil || p.Status != 503 || p.Detail == "" || p.RequestID != "rid-1" {
			t.Errorf("%s: problem %q: %v", id, r.msg.Data, err)
		}
	}

	send("a", "")
	<-g.started
	send("b", "")
	waitQueued(1)
	send("big", strings.Repeat("x", 5000)) // over MaxPendingBytes on its own
	checkShed("big")
	send("c", "")
	waitQueued(2)
	send("d", "")
	checkShed("d")

	other := request("GET", "/work/e", "", "", later)
	other.Header.Set(wire.HeaderRoute, "GET work.e.GET") // a route this worker does not have
	if _, err := nc.RequestMsg(other, 300*time.Millisecond); !errors.Is(err, nats.ErrTimeout) {
		t.Errorf("another worker's request was answered: %v", err)
	}

	close(g.release)
	for range 3 {
		r := <-results
		if r.err != nil || r.msg.Header.Get(wire.HeaderStatus) != "" || string(r.msg.Data) != r.id {
			t.Errorf("%s: %v %v", r.id, r.msg, r.err)
		}
	}
	if got := g.order(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("handlers ran for %v, want [a b c]", got)
	}
	if n := metricValue(t, addr, "metro_worker_requests_shed_total"); n != 2 {
		t.Errorf("metro_worker_requests_shed_total = %v, want 2", n)
	}
}

// TestBacklogOrder: the backlog hands out waiting messages oldest first
// across growth of its ring, refuses past its bounds, and frees a handler
// slot only when nothing waits.
func TestBacklogOrder(t *testing.T) {
	b := newBacklog(1, 40, 1<<20)
	msg := func(i int) *nats.Msg { return &nats.Msg{Subject: "s." + strconv.Itoa(i), Data: []byte("x")} }
	if got := b.admit(msg(0), time.Time{}); got != admitRun {
		t.Fatalf("first admit %v, want run", got)
	}
	next := 1
	for round := range 3 {
		// Interleave queueing and serving so the ring wraps while it grows.
		for range 10 + round*5 {
			if got := b.admit(msg(next+b.waiting()), time.Time{}); got != admitQueue {
				t.Fatalf("admit %v, want queue", got)
			}
		}
		for range 5 {
			if m, _ := b.next(0); m.Subject != "s."+strconv.Itoa(next) {
				t.Fatalf("next %s, want s.%d", m.Subject, next)
			}
			next++
		}
	}
	for b.waiting() < 40 {
		b.admit(msg(next+b.waiting()), time.Time{})
	}
	if got := b.admit(msg(999), time.Time{}); got != admitShed {
		t.Fatalf("admit past 40 waiting: %v, want shed", got)
	}
	for b.waiting() > 0 {
		if m, _ := b.next(0); m.Subject != "s."+strconv.Itoa(next) {
			t.Fatalf("next %s, want s.%d", m.Subject, next)
		}
		next++
	}
	if b.bytes != 0 {
		t.Errorf("%d bytes accounted with nothing waiting", b.bytes)
	}
	if m, _ := b.next(0); m != nil || b.busy != 0 {
		t.Fatalf("empty backlog: next %v, busy %d", m, b.busy)
	}
	if got := b.admit(msg(0), time.Time{}); got != admitRun {
		t.Errorf("admit after the slot was freed: %v, want run", got)
	}
}

// TestFlushToAnOlderCaller: a caller that reads every reply as one message
// (protocol version 2) cannot be streamed to: a handler's flush says so,
// and the reply leaves whole when the handler returns.
func TestFlushToAnOlderCaller(t *testing.T) {
	ns := natstest.Run(t)
	flushed := make(chan error, 1)
	w := New(Options{Name: "feed", URL: ns.ClientURL(), Logger: quiet})
	if err := w.Handle("GET /feed", http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.WriteString(rw, "one ")
		flushed <- http.NewResponseController(rw).Flush()
		io.WriteString(rw, "two")
	})); err != nil {
		t.Fatal(err)
	}
	run(t, ns, w)
	m := request("GET", "/feed", "", "", time.Now().Add(10*time.Second))
	m.Header.Set(wire.HeaderVersion, "2")
	rep, err := natstest.Connect(t, ns).RequestMsg(m, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-flushed; !errors.Is(err, http.ErrNotSupported) {
		t.Errorf("flush to a version-2 caller: %v, want http.ErrNotSupported", err)
	}
	if string(rep.Data) != "one two" || rep.Header.Get(wire.HeaderStream) != "" {
		t.Errorf("reply %q (Metro-Stream %q), want the whole body in one message", rep.Data, rep.Header.Get(wire.HeaderStream))
	}
}
