package worker

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/natstest"
)

// BenchmarkWorkerDispatch measures a worker's per-request work.
// "serve": one request message turned into an *http.Request, dispatched
// through the route set to the handler, and the reply published on a
// real connection (to a subject no one reads), with no wait for NATS.
// "roundtrip": the same through a running worker and an embedded server,
// one request at a time, as a latency figure.
func BenchmarkWorkerDispatch(b *testing.B) {
	ns := natstest.Run(b)
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello "+r.PathValue("id"))
	})
	newWorker := func() *Worker {
		w := New(Options{Name: "bench", URL: ns.ClientURL(), Logger: quiet})
		for _, p := range []string{"GET /users/{id}", "POST /users", "GET /files/{p...}", "GET /health"} {
			if err := w.Handle(p, hello); err != nil {
				b.Fatal(err)
			}
		}
		return w
	}
	msg := request("GET", "/users/42", "q=1", "", time.Now().Add(time.Hour))

	b.Run("serve", func(b *testing.B) {
		w := newWorker()
		nc := natstest.Connect(b, ns)
		sub, err := nc.SubscribeSync("bench.unused")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			w.serve(&nats.Msg{Subject: msg.Subject, Reply: "bench.sink", Header: msg.Header, Sub: sub})
		}
	})
	b.Run("roundtrip", func(b *testing.B) {
		run(b, ns, newWorker())
		nc := natstest.Connect(b, ns)
		b.ReportAllocs()
		for b.Loop() {
			m, err := nc.RequestMsg(msg, 10*time.Second)
			if err != nil || string(m.Data) != "hello 42" {
				b.Fatalf("reply %v %v", m, err)
			}
		}
	})
}
