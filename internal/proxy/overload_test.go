package proxy_test

import (
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// TestOverloadDoesNotCollapse drives an open-loop load at five times a
// worker's capacity (concurrency 4, a 100ms handler: 40 requests/s)
// through a real gateway and NATS. What the worker cannot take is refused
// at once with 503 rather than queued past its deadline, so it keeps
// serving near capacity while the load lasts, and a request right after
// the load is served: the collapse this guards against answered every
// request 504 within a second and went on doing so for as long as the
// worker took to run through every expired request in its queue.
//
// Outcomes are counted rather than timed, so that a busy machine only
// makes the counts smaller: the bars are far below what an idle machine
// reaches and far above the zero of the collapse.
func TestOverloadDoesNotCollapse(t *testing.T) {
	const (
		concurrency = 4
		work        = 100 * time.Millisecond
		capacity    = concurrency * float64(time.Second/work) // requests/s
		rate        = 5 * capacity
		duration    = 4 * time.Second
		total       = int(rate * 4) // rate x duration
		interval    = time.Duration(float64(time.Second) / rate)
	)
	workerReg := prometheus.NewRegistry()
	// The timeout leaves room for a machine so busy that messages take
	// a second to get through: what would wait longer than that for a
	// handler must still be refused, not queued.
	e := newEnv(t, proxy.Config{Timeout: 5 * time.Second})
	e.worker("slow", map[string]http.HandlerFunc{
		"GET /work": func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(work)
			io.WriteString(w, "done")
		},
	}, metro.WithConcurrency(concurrency), metro.WithRegisterer(workerReg))

	tr := &http.Transport{MaxIdleConnsPerHost: total}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	get := func() (int, error) {
		resp, err := client.Get(e.srv.URL + "/work")
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
			return -1, nil // a 503 must say when to retry
		}
		return resp.StatusCode, nil
	}

	// Open loop: each request leaves on its schedule, whether or not the
	// ones before it have been answered.
	type outcome struct {
		late   bool // sent in the second half of the load
		status int
		err    error
	}
	outcomes := make([]outcome, total)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range total {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, err := get()
			outcomes[i] = outcome{late: i >= total/2, status: status, err: err}
		}()
	}
	sent := time.Since(start)
	wg.Wait()

	byStatus := map[int]int{}
	lateOK, errs := 0, 0
	for _, o := range outcomes {
		if o.err != nil {
			errs++
			continue
		}
		byStatus[o.status]++
		if o.late && o.status == http.StatusOK {
			lateOK++
		}
	}
	t.Logf("%d requests sent in %v: %v by status, %d errors; %d served in the second half", total, sent.Round(time.Millisecond), byStatus, errs, lateOK)
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
	// At capacity the second half serves capacity x duration/2 = 80; an
	// idle machine comes close, one with a load of 25 on 2 cores served
	// 38; the collapse serves none.
	if want := int(capacity * duration.Seconds() / 2 / 8); lateOK < want {
		t.Errorf("%d requests served in the second half of the overload, want at least %d: goodput collapsed", lateOK, want)
	}
	shed, expired := sample(t, workerReg, "metro_worker_requests_shed_total"), sample(t, workerReg, "metro_worker_requests_expired_total")
	t.Logf("the worker shed %v requests and dropped %v expired ones", shed, expired)
	if shed == 0 {
		t.Error("the worker shed nothing at five times its capacity")
	}

	// Right after the load: served at once, not after a backlog of
	// expired requests.
	ok := false
	for try := 1; try <= 3 && !ok; try++ {
		status, err := get()
		t.Logf("after the load, try %d: %d %v", try, status, err)
		ok = err == nil && status == http.StatusOK
	}
	if !ok {
		t.Error("three requests after the load ended all failed: the worker is still busy with the overload")
	}
}
