package proxy_test

import (
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/loadtest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// TestOverloadDoesNotCollapse drives an open-loop load at five times a
// worker's capacity (concurrency 4, a 200ms handler: 20 requests/s)
// through a real gateway and NATS. What the worker cannot take is refused
// at once with 503 rather than queued past its deadline, so it keeps
// serving while the load lasts, and a request sent as the load ends is
// served. The collapse this guards against answered every request 504
// within two seconds (its queue grew by 80 requests a second, each
// second of them waiting four) and went on doing so for as long as the
// worker took to run through every expired request in its queue.
//
// Outcomes are counted rather than timed, so that a busy machine only
// makes the counts smaller: the bars are far below what an idle machine
// reaches and above the zero of the collapse. The route is declared, so
// that discovery falling behind on a starved machine cannot turn requests
// away; the timeout leaves room for messages that take seconds to get
// through such a machine.
func TestOverloadDoesNotCollapse(t *testing.T) {
	const (
		concurrency = 4
		work        = 200 * time.Millisecond
		capacity    = concurrency * int(time.Second/work) // requests/s
		rate        = 5 * capacity
		seconds     = 5
		total       = rate * seconds
		interval    = time.Second / time.Duration(rate)
		timeout     = 8 * time.Second
	)
	workerReg := prometheus.NewRegistry()
	e := newEnv(t, proxy.Config{Timeout: timeout, Routes: []proxy.RouteConfig{{Match: "GET /work"}}})
	var runs, stale atomic.Int64 // handler runs, and those for a client gone
	e.worker("slow", map[string]http.HandlerFunc{
		"GET /work": func(w http.ResponseWriter, r *http.Request) {
			runs.Add(1)
			if r.Context().Err() != nil {
				stale.Add(1)
			}
			time.Sleep(work)
			io.WriteString(w, "done")
		},
	}, metro.WithConcurrency(concurrency), metro.WithRegisterer(workerReg))

	tr := &http.Transport{MaxIdleConnsPerHost: total}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 3 * timeout}
	type outcome struct {
		status     int
		retryAfter string
		err        error
	}
	get := func() outcome {
		resp, err := client.Get(e.srv.URL + "/work")
		if err != nil {
			return outcome{err: err}
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return outcome{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	}

	// Open loop: each request leaves on its schedule, whether or not the
	// ones before it have been answered.
	outcomes := make([]outcome, total)
	sent, wait := loadtest.OpenLoop(total, interval, func(i int) { outcomes[i] = get() })

	// A client arriving as the load ends is served: at once, or after
	// the Retry-After of a 503 while the backlog of the load empties;
	// never after waiting out the timeout behind expired requests.
	var after []outcome
	for range 3 {
		o := get()
		after = append(after, o)
		if o.err != nil || o.status != http.StatusServiceUnavailable {
			break
		}
		s, _ := strconv.Atoi(o.retryAfter)
		time.Sleep(time.Duration(s) * time.Second) // as the answer asks
	}
	wait()

	byStatus := map[int]int{}
	lateOK, errs := 0, 0
	late := total * 3 / 5 // the last two seconds
	for i, o := range outcomes {
		if o.err != nil {
			errs++
			continue
		}
		byStatus[o.status]++
		if o.status == http.StatusServiceUnavailable && o.retryAfter == "" {
			t.Errorf("request %d: 503 without Retry-After", i)
		}
		if i >= late && o.status == http.StatusOK {
			lateOK++
		}
	}
	perSecond := make([]int, seconds)
	for i, o := range outcomes {
		if o.status == http.StatusOK {
			perSecond[i/rate]++
		}
	}
	t.Logf("served by the second they were sent in: %v", perSecond)
	shed, expired := sample(t, workerReg, "metro_worker_requests_shed_total"), sample(t, workerReg, "metro_worker_requests_expired_total")
	t.Logf("%d requests sent in %v: %v by status, %d errors; %d served in the last two seconds; %d handler runs, %d for a client gone; the worker shed %v and dropped %v expired",
		total, sent.Round(time.Millisecond), byStatus, errs, lateOK, runs.Load(), stale.Load(), shed, expired)
	t.Logf("as the load ended: %+v", after)
	for status, n := range byStatus {
		switch status {
		case http.StatusOK, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		default:
			t.Errorf("%d answers with status %d", n, status)
		}
	}
	if errs > total/100 {
		t.Errorf("%d requests failed without an answer", errs)
	}
	// At capacity the last two seconds serve 40 (an idle machine comes
	// close; with the race detector and a load of 30 on 2 cores, requests
	// reach the worker seconds late and 6 were served); the collapse
	// serves none once its queue is longer than the timeout.
	if lateOK < 3 {
		t.Errorf("%d requests served in the last two seconds of the overload: goodput collapsed", lateOK)
	}
	if n, s := runs.Load(), stale.Load(); s > n/10 {
		t.Errorf("%d of %d handler runs were for requests whose deadline had passed", s, n)
	}
	if shed == 0 {
		t.Error("the worker shed nothing at five times its capacity")
	}
	if last := after[len(after)-1]; last.err != nil || last.status != http.StatusOK || len(after) > 1 && after[0].status == http.StatusGatewayTimeout {
		t.Errorf("a request as the load ended was not served (answers %+v): the worker is still busy with the overload", after)
	}
}
