package main

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/bench/hello"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
)

// TestWorkerAnswersHello sends the request message of PROTOCOL.md section 2
// by hand, as the gateway would for GET /hello, and checks the reply of
// section 3.
func TestWorkerAnswersHello(t *testing.T) {
	s := natstest.Run(t)
	t.Setenv("NATS_URL", s.ClientURL())
	t.Setenv("METRO_PREFIX", "")
	ctx, cancel := context.WithCancel(context.Background())
	ready := metrotest.NewFirstLine()
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		runErr = run(ctx, ready, "127.0.0.1:0", "hello", helloWorker())
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if runErr != nil {
			t.Errorf("worker: %v", runErr)
		}
	})
	select {
	case <-ready.C:
	case <-done:
		t.Fatal("worker exited before it was ready")
	case <-time.After(10 * time.Second):
		t.Fatal("worker not ready after 10s")
	}

	nc := natstest.Connect(t, s)
	msg := &nats.Msg{Subject: "hello.GET", Header: nats.Header{
		"Metro-Version":    {"1"},
		"Metro-Method":     {"GET"},
		"Metro-Path":       {hello.Path},
		"Metro-Request-Id": {"bench-test-1"},
		"Metro-Deadline":   {strconv.FormatInt(time.Now().Add(5*time.Second).UnixMilli(), 10)},
	}}
	rep, err := nc.RequestMsg(msg, 5*time.Second)
	if err != nil {
		t.Fatalf("request hello.GET: %v", err)
	}
	if st := rep.Header.Get("Metro-Status"); st != "" && st != "200" {
		t.Errorf("Metro-Status %q, want 200 or absent", st)
	}
	if string(rep.Data) != string(hello.Body) {
		t.Errorf("body %q, want %q", rep.Data, hello.Body)
	}
	if ct := rep.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
}
