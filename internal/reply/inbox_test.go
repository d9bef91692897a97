package reply

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/natstest"
)

// TestInboxConcurrentSlots: many requests start at once on a fresh inbox,
// so slots are created concurrently; each request must get its own reply
// and no slot may share another's subject.
func TestInboxConcurrentSlots(t *testing.T) {
	ns := natstest.Run(t)
	nc := natstest.Connect(t, ns)
	responder := natstest.Connect(t, ns)
	if _, err := responder.Subscribe("echo", func(m *nats.Msg) { m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	responder.Flush()
	for round := range 5 {
		ib := NewInbox(nc)
		const n = 64
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				want := strconv.Itoa(round*1000 + i)
				for range 5 {
					m, err := ib.Request(context.Background(), &nats.Msg{Subject: "echo", Data: []byte(want)}, time.Now().Add(10*time.Second))
					if err != nil {
						t.Errorf("request %s: %v", want, err)
						return
					}
					if string(m.Data) != want {
						t.Errorf("request %s got the reply %q", want, m.Data)
					}
				}
			})
		}
		wg.Wait()
		seen := map[string]bool{}
		for _, s := range ib.all {
			if seen[s.prefix] {
				t.Errorf("two slots share %q", s.prefix)
			}
			seen[s.prefix] = true
		}
		ib.Close()
	}
}

// TestInboxDuplicateReplies: when two responders answer one request (two
// workers whose routes overlap, or a reply arriving after its request gave
// up), the extra replies are dropped and every request still gets its own
// answer, never an earlier request's.
func TestInboxDuplicateReplies(t *testing.T) {
	ns := natstest.Run(t)
	nc := natstest.Connect(t, ns)
	for i := range 2 {
		r := natstest.Connect(t, ns)
		if _, err := r.Subscribe("dup", func(m *nats.Msg) { m.Respond(append(m.Data, byte('a'+i))) }); err != nil {
			t.Fatal(err)
		}
		r.Flush()
	}
	ib := NewInbox(nc)
	defer ib.Close()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				want := strconv.Itoa(g*1000 + i)
				m, err := ib.Request(context.Background(), &nats.Msg{Subject: "dup", Data: []byte(want)}, time.Now().Add(10*time.Second))
				if err != nil {
					t.Errorf("request %s: %v", want, err)
					return
				}
				if got := string(m.Data); got != want+"a" && got != want+"b" {
					t.Errorf("request %s got %q", want, got)
				}
			}
		})
	}
	wg.Wait()
}
