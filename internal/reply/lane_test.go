package reply_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/natsconn"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/reply"
	"github.com/metropolis-dev/metro/internal/wire"
)

// responders answers "echo" with its data and never answers "hang",
// telling arrived of each hanging request instead.
func responders(t *testing.T, s *server.Server) (arrived <-chan struct{}) {
	t.Helper()
	nc := natstest.Connect(t, s)
	got := make(chan struct{}, 8)
	if _, err := nc.Subscribe("echo", func(m *nats.Msg) { m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("hang", func(m *nats.Msg) { got <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return got
}

type result struct {
	err   error
	early bool // ended before its context did
}

// hang sends a request that gets no reply, with a minute to wait,
// counted in flight on the lane as a Switch counts it.
func hang(ln *reply.Lane) <-chan result {
	res := make(chan result, 1)
	ln.Hold()
	go func() {
		defer ln.Release()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := ln.Inbox.Request(ctx, &nats.Msg{Subject: "hang"}, time.Time{})
		res <- result{err, ctx.Err() == nil}
	}()
	return res
}

func wantLost(t *testing.T, r result) {
	t.Helper()
	if !errors.Is(r.err, wire.ErrConnectionLost) || !r.early {
		t.Fatalf("request ended with %v (before its context: %v); want %v at once", r.err, r.early, wire.ErrConnectionLost)
	}
}

// echo sends requests that must each get their reply.
func echo(t *testing.T, ln *reply.Lane) {
	t.Helper()
	for i := range 20 {
		want := string(rune('a' + i))
		m, err := ln.Inbox.Request(t.Context(), &nats.Msg{Subject: "echo", Data: []byte(want)}, time.Now().Add(10*time.Second))
		if err != nil || string(m.Data) != want {
			t.Fatalf("echo request %d: %v", i, err)
		}
	}
}

// TestLaneConnectionLost: a request waiting for its reply when the
// server closes the connection ends at once with ErrConnectionLost, and
// the lane serves requests again once reconnected.
func TestLaneConnectionLost(t *testing.T) {
	s := natstest.Run(t)
	arrived := responders(t, s)
	nc := natstest.Connect(t, s, nats.ReconnectWait(10*time.Millisecond))
	ln := reply.NewLane(nc)
	defer ln.Close()
	res := hang(ln)
	<-arrived
	id, err := nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DisconnectClientByID(id); err != nil {
		t.Fatal(err)
	}
	wantLost(t, <-res)
	deadline := time.Now().Add(10 * time.Second)
	for !nc.IsConnected() || nc.Flush() != nil {
		if time.Now().After(deadline) {
			t.Fatal("not reconnected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	echo(t, ln)
}

// TestLaneMove: Move takes the connection to another server. With nothing
// in flight, no request fails, not even one sent right after the move,
// before nats.go has reported the disconnection; a request still waiting
// when the limit passes loses its reply and is answered at once.
func TestLaneMove(t *testing.T) {
	for _, tt := range []struct {
		name     string
		inFlight bool
	}{
		{"nothing in flight", false},
		{"a request still waiting after the limit", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := natstest.RunCluster(t, 2, 3*time.Second)
			arrived := responders(t, c.Servers[1])
			nc := natstest.Connect(t, c.Servers[0], nats.ReconnectWait(10*time.Millisecond))
			// The responders' interest reaches the other server over the
			// route a moment after they subscribe.
			if !natsconn.Poll(t.Context(), time.Minute, func() bool {
				_, err := nc.Request("echo", nil, 5*time.Second)
				return err == nil
			}) {
				t.Fatal("the responders never became reachable from the other server")
			}
			ln := reply.NewLane(nc)
			defer ln.Close()
			echo(t, ln)
			var res <-chan result
			if tt.inFlight {
				res = hang(ln)
				<-arrived
			}
			from := nc.ConnectedServerId()
			limit := time.Minute
			if tt.inFlight {
				// Move waits for the request only up to the limit.
				limit = time.Millisecond
			}
			if !ln.Move(t.Context(), from, limit) {
				t.Fatal("did not move")
			}
			if nc.ConnectedServerId() == from {
				t.Fatal("still on the same server")
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			echo(t, ln)
			if tt.inFlight {
				wantLost(t, <-res)
			}
		})
	}
}
