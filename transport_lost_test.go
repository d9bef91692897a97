package metro_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/natstest"
)

// outcome is how a call made by callFor ended.
type outcome struct {
	status     int
	retryAfter string
	body       string
	detail     string // a problem body's
	err        error
	early      bool // returned before the call's context ended
}

// callFor makes a GET with a minute to run and reports how it ended.
func callFor(ctx context.Context, client *http.Client, url string) outcome {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return outcome{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var p problemBody
	_ = json.Unmarshal(body, &p)
	return outcome{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(body), detail: p.Detail, early: ctx.Err() == nil}
}

// connsNamed counts the client connections on s named name.
func connsNamed(t *testing.T, s *server.Server, name string) []*server.ConnInfo {
	t.Helper()
	cz, err := s.Connz(&server.ConnzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var found []*server.ConnInfo
	for _, c := range cz.Conns {
		if c.Name == name {
			found = append(found, c)
		}
	}
	return found
}

// TestTransportLostConnectionAnswersAtOnce: a call waiting for its reply
// when its NATS connection drops cannot get it (the reply subscription was
// on the server that is gone), so it is answered 503 with Retry-After at
// once, as the gateway answers, not when its minute is up. Both kinds of
// Transport: one on a connection of its own, and a worker's calling
// another worker from a handler.
func TestTransportLostConnectionAnswersAtOnce(t *testing.T) {
	check := func(t *testing.T, o outcome) {
		t.Helper()
		if o.err != nil {
			t.Fatalf("call ended with %v; want a 503 answer before its minute was up", o.err)
		}
		if !o.early {
			t.Fatalf("call answered %d only once its context had ended", o.status)
		}
		if o.status != http.StatusServiceUnavailable || o.retryAfter == "" || !strings.Contains(o.detail, "connection to NATS was lost") {
			t.Fatalf("answered %d, Retry-After %q, detail %q; want 503 with Retry-After saying the connection was lost", o.status, o.retryAfter, o.detail)
		}
	}
	// hanging runs a worker whose GET /hang never answers until the test
	// ends, and returns a channel that gets a value as each call arrives.
	hanging := func(t *testing.T, s *server.Server) <-chan struct{} {
		arrived := make(chan struct{}, 1)
		release := make(chan struct{})
		w := calleeWorker(s.ClientURL(), "hang")
		w.HandleFunc("GET /hang", func(w http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			<-release
		})
		runCallee(t, w)
		t.Cleanup(func() { close(release) }) // before the worker's cleanup
		return arrived
	}
	// kick closes, from the server's side, the connections named name.
	kick := func(t *testing.T, s *server.Server, name string) {
		t.Helper()
		found := connsNamed(t, s, name)
		if len(found) == 0 {
			t.Fatalf("no connection named %q", name)
		}
		for _, c := range found {
			if err := s.DisconnectClientByID(c.Cid); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("Transport on its own connection", func(t *testing.T) {
		s := natstest.Run(t)
		arrived := hanging(t, s)
		client := &http.Client{Transport: &metro.Transport{Conn: natstest.Connect(t, s, nats.Name("caller"))}}
		res := make(chan outcome, 1)
		go func() { res <- callFor(t.Context(), client, "metro:///hang") }()
		<-arrived
		kick(t, s, "caller")
		check(t, <-res)
	})

	t.Run("worker's Transport", func(t *testing.T) {
		s := natstest.Run(t)
		arrived := hanging(t, s)
		res := make(chan outcome, 1)
		caller := calleeWorker(s.ClientURL(), "caller")
		caller.HandleFunc("GET /call", func(w http.ResponseWriter, r *http.Request) {
			res <- callFor(r.Context(), caller.Client(), "metro:///hang")
		})
		runCallee(t, caller)
		// The request to the caller is answered by nobody once its
		// connection is gone; only the call it makes matters here.
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			callFor(ctx, &http.Client{Transport: &metro.Transport{Conn: natstest.Connect(t, s)}}, "metro:///call")
		}()
		t.Cleanup(func() { cancel(); <-done })
		<-arrived
		kick(t, s, "metro worker caller")
		check(t, <-res)
	})
}

// TestWorkerCallMovesWithTheWorker: a worker that moves off a server in
// lame duck mode while one of its handlers waits for a call to another
// worker keeps that call's reply: the reply comes through the inbox on
// the connection it was sent on, so that connection moves only once the
// call has its answer (new calls go over the worker's second connection
// meanwhile). Moving it at once would lose the reply, which is answered
// 503 since a lost connection's calls are failed at once.
func TestWorkerCallMovesWithTheWorker(t *testing.T) {
	// A grace period of 3s before the leaving server closes its clients.
	c := natstest.RunCluster(t, 3, 9*time.Second)
	leaving := c.Servers[0]

	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	callee := calleeWorker(c.Servers[1].ClientURL(), "callee")
	callee.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "slow answer")
	})
	runCallee(t, callee)

	// The caller lists the leaving server first and does not shuffle.
	res := make(chan outcome, 1)
	caller := calleeWorker(c.URLs(), "caller", metro.WithNATSOptions(nats.DontRandomize()))
	caller.HandleFunc("GET /call", func(w http.ResponseWriter, r *http.Request) {
		o := callFor(r.Context(), caller.Client(), "metro:///slow")
		res <- o
		io.WriteString(w, o.body)
	})
	runCallee(t, caller)
	if len(connsNamed(t, leaving, "metro worker caller")) != 1 {
		t.Fatal("the caller is not on the first server")
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		callFor(ctx, &http.Client{Transport: &metro.Transport{Conn: natstest.Connect(t, c.Servers[2])}}, "metro:///call")
	}()
	t.Cleanup(func() { cancel(); <-done })
	<-arrived

	ldDone := make(chan struct{})
	go func() { defer close(ldDone); leaving.LameDuckShutdown() }()
	t.Cleanup(func() { leaving.Shutdown(); <-ldDone })
	// The handoff is under way once the caller has its second connection.
	deadline := time.Now().Add(20 * time.Second)
	for len(connsNamed(t, c.Servers[1], "metro worker caller"))+len(connsNamed(t, c.Servers[2], "metro worker caller")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the caller did not connect to another server on the lame duck notice")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The callee answers once the caller's first connection has left the
	// server (where moving it at once loses the reply), or after a second
	// if it stays, well within the grace period.
	stay := time.After(time.Second)
	for len(connsNamed(t, leaving, "metro worker caller")) > 0 {
		select {
		case <-stay:
		case <-time.After(5 * time.Millisecond):
			continue
		}
		break
	}
	close(release)
	o := <-res
	if o.err != nil || o.status != http.StatusOK || o.body != "slow answer" {
		t.Fatalf("the call in flight during the move got %d %q (err %v); want the callee's answer", o.status, o.body, o.err)
	}
	// Then the caller moves: the leaving server has none of its connections.
	deadline = time.Now().Add(20 * time.Second)
	for len(connsNamed(t, leaving, "metro worker caller")) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the caller stayed on the leaving server after its call ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
