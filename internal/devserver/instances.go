package devserver

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// pingEvery is how often a waiting caller asks services to answer a ping.
const pingEvery = 50 * time.Millisecond

// pinger asks NATS services who is running ($SRV.PING, the micro
// protocol). Each worker process registers one service instance with an
// id of its own, so a new id is a new process serving.
type pinger struct {
	nc *nats.Conn
}

// rounds pings subj every pingEvery until ctx ends or seen returns true;
// seen gets the ids (id -> service name) that answered each round, with
// replies to earlier rounds kept apart so that a process gone since does
// not count. It returns ctx's error when seen never returned true.
func (p pinger) rounds(ctx context.Context, subj string, seen func(round map[string]string) bool) error {
	base := p.nc.NewInbox()
	ch := make(chan *nats.Msg, 256)
	sub, err := p.nc.ChanSubscribe(base+".*", ch)
	if err != nil {
		return fmt.Errorf("subscribing for ping replies: %w", err)
	}
	defer sub.Unsubscribe() //nolint:errcheck
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	n := 0
	cur := map[string]string{}
	ask := func() {
		n++
		cur = map[string]string{}
		// A failed publish (reconnecting) is retried at the next tick.
		_ = p.nc.PublishRequest(subj, fmt.Sprintf("%s.%d", base, n), nil)
		_ = p.nc.Flush()
	}
	ask()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			ask()
		case m := <-ch:
			if m.Subject != fmt.Sprintf("%s.%d", base, n) {
				continue // a late reply to an earlier round
			}
			var ping micro.Ping
			if err := json.Unmarshal(m.Data, &ping); err != nil || ping.ID == "" {
				continue
			}
			cur[ping.ID] = ping.Name
			if seen(cur) {
				return nil
			}
		}
	}
}

// ids returns the instances of service name that answer within wait.
func (p pinger) ids(ctx context.Context, name string, wait time.Duration) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	all := map[string]bool{}
	err := p.rounds(ctx, "$SRV.PING."+name, func(r map[string]string) bool {
		for id := range r {
			all[id] = true
		}
		return false
	})
	if err != nil && ctx.Err() == nil {
		return nil, err
	}
	return all, nil
}

// waitNew returns once n instances of service name that are not in known
// answer a ping. It gives up when ctx ends or when abort is closed (a
// new process died).
func (p pinger) waitNew(ctx context.Context, name string, known map[string]bool, n int, abort <-chan struct{}) (map[string]bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		select {
		case <-abort:
			cancel()
		case <-ctx.Done():
		}
	})
	fresh := map[string]bool{}
	err := p.rounds(ctx, "$SRV.PING."+name, func(r map[string]string) bool {
		for id := range r {
			if !known[id] {
				fresh[id] = true
			}
		}
		return len(fresh) >= n
	})
	return fresh, err
}
