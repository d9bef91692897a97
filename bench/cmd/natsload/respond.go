package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/bench/hello"
)

// respond answers every request on subj with hello.Body until ctx ends. It is
// deliberately the plainest responder nats.go allows (one subscription, its
// handler replying inline) so that scenario (f) measures NATS and nothing
// else. It prints "ready" once the server has the subscription.
func respond(ctx context.Context, url, subj string, ready io.Writer) error {
	nc, err := nats.Connect(url, nats.Name("natsload-responder"))
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", url, err)
	}
	defer nc.Close()
	sub, err := nc.QueueSubscribe(subj, "natsload", func(m *nats.Msg) {
		_ = m.Respond(hello.Body)
	})
	if err != nil {
		return fmt.Errorf("subscribing to %s: %w", subj, err)
	}
	// A flushed round trip means the server has processed the SUB, so a
	// requester started after "ready" never sees "no responders".
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		return fmt.Errorf("flushing the subscription: %w", err)
	}
	if _, err := fmt.Fprintln(ready, "ready"); err != nil {
		return fmt.Errorf("announcing readiness: %w", err)
	}
	<-ctx.Done()
	if err := sub.Drain(); err != nil {
		return fmt.Errorf("draining %s: %w", subj, err)
	}
	return nil
}
