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

// TestTransportLostConnectionAnswersAtOnce: a call waiting for its reply
// when its NATS connection drops cannot get it (the reply subscription was
// on the server that is gone), so it is answered 503 with Retry-After at
// once, as the gateway answers, not when its minute is up. Both kinds of
// Transport: one on a connection of its own, and a worker's calling
// another worker from a handler.
func TestTransportLostConnectionAnswersAtOnce(t *testing.T) {
	type outcome struct {
		status     int
		retryAfter string
		detail     string
		err        error
		early      bool // returned before the call's context ended
	}
	// call makes a GET with a minute to run and reports how it ended.
	call := func(ctx context.Context, client *http.Client, url string) outcome {
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
		return outcome{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), detail: p.Detail, early: ctx.Err() == nil}
	}
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
		cz, err := s.Connz(&server.ConnzOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range cz.Conns {
			if c.Name == name {
				if err := s.DisconnectClientByID(c.Cid); err != nil {
					t.Fatal(err)
				}
				n++
			}
		}
		if n == 0 {
			t.Fatalf("no connection named %q", name)
		}
	}

	t.Run("Transport on its own connection", func(t *testing.T) {
		s := natstest.Run(t)
		arrived := hanging(t, s)
		client := &http.Client{Transport: &metro.Transport{Conn: natstest.Connect(t, s, nats.Name("caller"))}}
		res := make(chan outcome, 1)
		go func() { res <- call(t.Context(), client, "metro:///hang") }()
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
			res <- call(r.Context(), caller.Client(), "metro:///hang")
		})
		runCallee(t, caller)
		// The request to the caller is answered by nobody once its
		// connection is gone; only the call it makes matters here.
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			call(ctx, &http.Client{Transport: &metro.Transport{Conn: natstest.Connect(t, s)}}, "metro:///call")
		}()
		t.Cleanup(func() { cancel(); <-done })
		<-arrived
		kick(t, s, "metro worker caller")
		check(t, <-res)
	})
}
