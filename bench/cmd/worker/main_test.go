package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/bench/blob"
	"github.com/metropolis-dev/metro/bench/hello"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// TestWorkerAnswersHello sends the request message of PROTOCOL.md section 2
// by hand, as the gateway would for GET /hello, and checks the reply of
// section 3.
func TestWorkerAnswersHello(t *testing.T) {
	s := startWorker(t, "127.0.0.1:0", "hello", helloWorker)

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

// TestBlobWorkerThroughTheGateway serves the blob worker behind a real
// gateway and checks every route of scenario (x) byte for byte: a download
// and an upload past NATS's 1 MiB payload, so both stream (PROTOCOL.md
// section 9), and the streamed reply.
func TestBlobWorkerThroughTheGateway(t *testing.T) {
	s := startWorker(t, "", "blob", blobWorker)
	gw, srv := metrotest.StartGateway(t, natstest.Connect(t, s), proxy.Config{
		MaxBody: 64 << 20, Timeout: time.Minute, Logger: slog.New(slog.DiscardHandler),
	})
	metrotest.WaitRoutes(t, gw, blob.Download, blob.Upload, blob.Stream)

	const n = 5<<20 + 321
	resp, err := http.Get(srv.URL + blob.Path + "?bytes=" + strconv.Itoa(n))
	if err != nil {
		t.Fatal(err)
	}
	chk := blob.NewChecker()
	_, err = io.Copy(chk, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d, err %v", blob.Path, resp.StatusCode, err)
	}
	if err := chk.Err(n); err != nil {
		t.Errorf("GET %s: %v", blob.Path, err)
	}

	req, _ := http.NewRequest("POST", srv.URL+blob.Path, blob.NewReader(n))
	req.ContentLength = n
	resp, body := metrotest.Do(t, req)
	if resp.StatusCode != 200 || body != strconv.Itoa(n) {
		t.Errorf("POST %s: %d %q, want 200 %q", blob.Path, resp.StatusCode, body, strconv.Itoa(n))
	}

	resp, err = http.Get(srv.URL + blob.StreamPath)
	if err != nil {
		t.Fatal(err)
	}
	chk = blob.NewChecker()
	_, err = io.Copy(chk, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || chk.Err(blob.FirstBytes+blob.StreamRest) != nil {
		t.Errorf("GET %s: %d, %d bytes, err %v", blob.StreamPath, resp.StatusCode, chk.N, err)
	}
	if resp.ContentLength != -1 {
		t.Errorf("GET %s: Content-Length %d, want a chunked (streamed) reply", blob.StreamPath, resp.ContentLength)
	}
}

// startWorker starts a NATS server and runs the program's worker (run),
// made by worker, on it until the test ends; it returns once the worker
// says it is ready, with the server.
func startWorker(t *testing.T, pprofAddr, name string, worker func() *metro.Worker) *server.Server {
	t.Helper()
	s := natstest.Run(t)
	t.Setenv("NATS_URL", s.ClientURL())
	t.Setenv("METRO_PREFIX", "")
	ctx, cancel := context.WithCancel(context.Background())
	ready := metrotest.NewFirstLine()
	done := make(chan error, 1)
	w := worker() // after NATS_URL is set: it reads it
	go func() { done <- run(ctx, ready, pprofAddr, name, w) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	select {
	case <-ready.C:
	case err := <-done:
		t.Fatalf("worker exited before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("worker not ready after 10s")
	}
	return s
}
