package tap

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/natstest"
)

// BenchmarkPairAndBuffer is the intake path without the network: each
// iteration is one request and its reply (two messages) through the
// pairer into the display feed, which a reader drains as the UI would.
func BenchmarkPairAndBuffer(b *testing.B) {
	const n = 4096
	reqs := make([]*nats.Msg, n)
	reps := make([]*nats.Msg, n)
	for i := range reqs {
		reply := "_INBOX.bench." + strconv.Itoa(i)
		reqs[i] = &nats.Msg{Subject: "users." + strconv.Itoa(i) + ".GET", Reply: reply, Header: nats.Header{
			"Metro-Method": {"GET"}, "Metro-Request-Id": {"abc"}, "Metro-Deadline": {strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10)},
		}}
		reps[i] = &nats.Msg{Subject: reply, Data: []byte(`{"id":1}`), Header: nats.Header{"Metro-Status": {"200"}}}
	}
	p := NewPairer("", true)
	feed := NewFeed(DefaultBuffer)
	var batch Batch
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % n
		if ex, ok := p.Observe(reqs[j], now); ok {
			feed.Add(ex)
		}
		if ex, ok := p.Observe(reps[j], now); ok {
			feed.Add(ex)
		}
		if j%1024 == 1023 {
			feed.Take(&batch)
		}
	}
	b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkIntakeLive measures the sustained rate of a real intake: a
// publisher sends request/reply pairs through an embedded server in
// windows that fit the intake queue, waiting for intake to catch up after
// each, so the figure is what tap keeps up with, not how fast it drops.
func BenchmarkIntakeLive(b *testing.B) {
	s := natstest.Run(b)
	pub, tapConn := natstest.Connect(b, s), natstest.Connect(b, s)
	in, err := Subscribe(tapConn, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	feed := NewFeed(DefaultBuffer)
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, feed.Add, feed.SetIntake) }()
	body := []byte(`{"id":1}`)
	const window = 4096
	var batch Batch
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		reply := "_INBOX.live." + strconv.Itoa(i)
		_ = pub.PublishMsg(&nats.Msg{Subject: "users.1.GET", Reply: reply, Data: body})
		_ = pub.Publish(reply, body)
		if (i+1)%window == 0 || i == b.N-1 {
			_ = pub.Flush()
			deadline := time.Now().Add(30 * time.Second)
			for {
				feed.Take(&batch)
				st := feed.Stats()
				if st.Total+st.Dropped >= uint64(i+1) {
					feed.Take(&batch) // as the display would, every tick
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("intake stuck at %d of %d", st.Total, i+1)
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
	}
	b.StopTimer()
	cancel()
	<-done
	st := feed.Stats()
	b.ReportMetric(float64(2*st.Total)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(st.Dropped), "dropped")
}
