package tui

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// gatewayTimeout is long on purpose: a 404 that waited for it would be
// obvious, without asserting anything about how fast a busy machine is.
const gatewayTimeout = 20 * time.Second

// TestEndToEnd: embedded NATS, the gateway, an SDK worker, and the real
// metro binary tapping everything with --json --count 3 while three
// requests go through (200, a 404 problem, 500), plus one to a route that
// does not exist, which must still be answered 404 at once.
func TestEndToEnd(t *testing.T) {
	bin := buildMetro(t)
	ns := natstest.Run(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	_, srv := metrotest.StartGateway(t, natstest.Connect(t, ns), proxy.Config{Timeout: gatewayTimeout})

	w := metro.NewWorker("shop", metro.WithNATSURL(ns.ClientURL()), metro.WithLogger(slog.New(slog.DiscardHandler)))
	w.HandleFunc("GET /items/{id}", func(rw http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "missing" {
			rw.Header().Set("Content-Type", "application/problem+json")
			rw.WriteHeader(http.StatusNotFound)
			fmt.Fprint(rw, `{"type":"about:blank","title":"Not Found","status":404}`)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(rw, `{"id":%q}`, r.PathValue("id"))
	})
	w.HandleFunc("POST /fail", func(rw http.ResponseWriter, r *http.Request) {
		http.Error(rw, "boom", http.StatusInternalServerError)
	})
	wDone := make(chan error, 1)
	go func() { wDone <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-wDone
	})
	select {
	case <-w.Ready():
	case err := <-wDone:
		wDone <- err
		t.Fatalf("worker stopped before it was ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("worker never ready")
	}

	// A bound on every request, so a hang fails the test instead of
	// stalling the run.
	client := &http.Client{Timeout: 2 * gatewayTimeout}
	do := func(method, path string) (int, string, time.Duration) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(""))
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type") + " " + string(b), time.Since(start)
	}
	// The gateway routes once it has heard the worker announce itself.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _, _ := do("GET", "/items/warmup"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("gateway never routed to the worker")
		}
		time.Sleep(20 * time.Millisecond)
	}

	cmd := exec.Command(bin, "tap", "--json", "--count", "3", "--timeout", "60s", "--server", ns.ClientURL())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	// Tap logs "tapping" once it is subscribed.
	ready := make(chan struct{})
	var logs strings.Builder
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "tapping") {
				close(ready)
			}
		}
	}()
	var lines []string
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
	}()
	go func() {
		<-outDone
		<-logDone
		exited <- cmd.Wait()
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("metro tap never said it was tapping")
	}

	requests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/items/7", 200},
		{"GET", "/items/missing", 404},
		{"POST", "/fail", 500},
	}
	for i, r := range requests {
		if code, body, _ := do(r.method, r.path); code != r.status {
			t.Fatalf("%s %s = %d %s, want %d", r.method, r.path, code, body, r.status)
		}
		if i == 0 {
			// With tap subscribed to everything, a route nobody serves is
			// still answered 404 without waiting for the timeout.
			code, body, took := do("GET", "/no/such/route")
			if code != 404 || !strings.Contains(body, "application/problem+json") {
				t.Fatalf("unknown route with tap listening: %d %s", code, body)
			}
			if took >= gatewayTimeout/2 {
				t.Fatalf("unknown route answered after %v: it waited for a timeout", took)
			}
		}
	}

	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("metro tap: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("metro tap did not exit after --count 3; wrote %q", lines)
	}
	if len(lines) != 3 {
		t.Fatalf("%d NDJSON lines, want 3:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for i, line := range lines {
		var rec struct {
			Time      time.Time `json:"time"`
			Subject   string    `json:"subject"`
			Method    string    `json:"method"`
			Path      string    `json:"path"`
			Status    int       `json:"status"`
			LatencyMS float64   `json:"latency_ms"`
			RequestID string    `json:"request_id"`
			Worker    string    `json:"worker"`
			Outcome   string    `json:"outcome"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		want := requests[i]
		if rec.Method != want.method || rec.Path != want.path || rec.Status != want.status || rec.Outcome != "ok" {
			t.Errorf("line %d: %s %s %d %s, want %s %s %d ok", i, rec.Method, rec.Path, rec.Status, rec.Outcome, want.method, want.path, want.status)
		}
		if rec.LatencyMS <= 0 || rec.Time.IsZero() || rec.RequestID == "" {
			t.Errorf("line %d: latency %v time %v request id %q", i, rec.LatencyMS, rec.Time, rec.RequestID)
		}
		if rec.Worker != "" && rec.Worker != "shop" {
			t.Errorf("line %d: worker %q, want shop", i, rec.Worker)
		}
	}
}
