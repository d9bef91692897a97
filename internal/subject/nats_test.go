package subject_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/subject"
)

// TestMatchesNATS holds a real nats-server to matchCases, so Matches cannot
// drift from what NATS delivers.
func TestMatchesNATS(t *testing.T) {
	s := natstest.Run(t)
	nc := natstest.Connect(t, s)
	const fence = "fence.x"
	for _, tt := range matchCases {
		// One channel for both subscriptions keeps the server's order: once
		// the fence has arrived, a matching message would have come first.
		ch := make(chan *nats.Msg, 8)
		sub, err := nc.ChanSubscribe(tt.sub, ch)
		if err != nil {
			t.Fatalf("subscribe %q: %v", tt.sub, err)
		}
		fsub, err := nc.ChanSubscribe(fence, ch)
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Publish(tt.subj, nil); err != nil {
			t.Fatalf("publish %q: %v", tt.subj, err)
		}
		if err := nc.Publish(fence, nil); err != nil {
			t.Fatal(err)
		}
		got := false
	wait:
		for {
			select {
			case m := <-ch:
				if m.Sub == fsub {
					break wait
				}
				if m.Sub == sub && m.Subject == tt.subj {
					got = true
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("fence for %q never arrived", tt.sub)
			}
		}
		if got != tt.want {
			t.Errorf("NATS delivers %q to %q: %v; table says %v", tt.subj, tt.sub, got, tt.want)
		}
		if got != subject.Matches(tt.sub, tt.subj) {
			t.Errorf("Matches(%q, %q) disagrees with NATS", tt.sub, tt.subj)
		}
		if err := sub.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
		if err := fsub.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLongestSubjectOverNATS sends requests whose subjects are as long as
// Append allows, with headers and a reply inbox, through a server with the
// default max_control_line. A longer one would make the server close the
// publishing connection.
func TestLongestSubjectOverNATS(t *testing.T) {
	s := natstest.Run(t)
	worker := natstest.Connect(t, s)
	client := natstest.Connect(t, s)

	route, err := subject.ParsePattern("POST /{id}")
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "api"
	sub, err := route.Subscription(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := worker.Subscribe(sub, func(m *nats.Msg) {
		method, segs, err := subject.Parse(prefix, m.Subject)
		reply := nats.NewMsg(m.Reply)
		if err != nil {
			reply.Data = []byte(err.Error())
		} else {
			reply.Data = []byte(method + " " + subject.EscapePath(segs))
		}
		_ = m.RespondMsg(reply)
	}); err != nil {
		t.Fatal(err)
	}
	if err := worker.Flush(); err != nil {
		t.Fatal(err)
	}

	room := subject.MaxSubjectBytes - len(prefix+".") - len(".POST")
	for _, path := range []string{
		"/" + strings.Repeat("a", room),
		"/" + strings.Repeat("!", room/3) + strings.Repeat("b", room%3), // each "!" is "%21"
		"/" + strings.Repeat("%E2%82%AC", room/9) + strings.Repeat("c", room%9),
	} {
		subj, err := subject.FromPath(prefix, "POST", path)
		if err != nil {
			t.Fatalf("FromPath(%.30q...): %v", path, err)
		}
		if len(subj) != subject.MaxSubjectBytes {
			t.Fatalf("subject is %d bytes, want exactly %d", len(subj), subject.MaxSubjectBytes)
		}
		msg := nats.NewMsg(subj)
		msg.Header.Set("Metro-Path", path)
		msg.Data = []byte("body")
		resp, err := client.RequestMsg(msg, 10*time.Second)
		if err != nil {
			t.Fatalf("request on a %d-byte subject: %v (connection %v, last error %v)", len(subj), err, client.Status(), client.LastError())
		}
		// The worker's reading of the subject is the canonical form of path.
		want, _ := subject.FromPath(prefix, "POST", strings.TrimPrefix(string(resp.Data), "POST "))
		if want != subj {
			t.Fatalf("worker read %.40q..., which maps to another subject", resp.Data)
		}
	}
	if !client.IsConnected() || !worker.IsConnected() {
		t.Fatalf("connections dropped: client %v, worker %v", client.Status(), worker.Status())
	}
}
