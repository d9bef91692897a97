package devserver

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/metropolis-dev/metro/internal/tracing"
)

// devBatchDelay is how long finished spans wait before they are sent in
// metro dev: short, so that `metro trace` finds a request just made.
const devBatchDelay = 100 * time.Millisecond

// TracesEnv sets how many recent traces metro dev keeps for metro trace
// (tracing.DefaultMaxTraces unless set); maxDevTraces bounds it, as each
// trace may hold up to tracing.DefaultSpansPerTrace spans.
const (
	TracesEnv    = "METRO_DEV_TRACES"
	maxDevTraces = 100_000
)

// devTracing is metro dev's trace collector and the gateway's provider.
type devTracing struct {
	col *tracing.Collector
	tp  *sdktrace.TracerProvider
}

// startTracing starts the collector on loopback and the in-process
// gateway's provider, which exports to it. Every process exports to the
// collector, which passes the spans on to the backend the OTEL_*
// variables name, if any: so `metro trace` sees them all, and so does
// the user's backend. Failures to pass them on are printed once each.
func startTracing(ctx context.Context, getenv func(string) string, printf func(string, ...any)) (*devTracing, error) {
	fwd, err := tracing.ForwardFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	if fwd != nil {
		var mu sync.Mutex
		last := ""
		fwd.OnError = func(err error) {
			mu.Lock()
			defer mu.Unlock()
			if err.Error() != last {
				last = err.Error()
				printf("%v", err)
			}
		}
	}
	keep := 0 // the default
	if v := getenv(TracesEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDevTraces {
			return nil, fmt.Errorf("%s=%q: want a number of traces from 1 to %d", TracesEnv, v, maxDevTraces)
		}
		keep = n
	}
	col, err := tracing.StartCollector("127.0.0.1:0", tracing.NewBuffer(keep, 0), fwd)
	if err != nil {
		return nil, err
	}
	tp, err := tracing.NewProvider(ctx, tracing.Options{
		Service: "gateway",
		// The collector passes the gateway's spans on too.
		Getenv:       func(string) string { return "" },
		Also:         []string{col.TracesEndpoint()},
		BatchTimeout: devBatchDelay,
	})
	if err != nil {
		_ = col.Close()
		return nil, err
	}
	return &devTracing{col: col, tp: tp}, nil
}

// close flushes the gateway's spans, then stops the collector.
func (t *devTracing) close() error {
	err := tracing.Shutdown(t.tp)
	if cerr := t.col.Close(); err == nil {
		err = cerr
	}
	return err
}

// workerEnv is the tracing part of a worker process's environment, put
// before the worker's own env: (which may override it). The worker's
// name becomes its service name, and its spans go to the collector (the
// traces endpoint wins over a general OTEL_EXPORTER_OTLP_ENDPOINT).
func (t *devTracing) workerEnv(name string, getenv func(string) string) []string {
	env := []string{
		tracing.EnvServiceName + "=" + name,
		tracing.EnvTracesEndpoint + "=" + t.col.TracesEndpoint(),
		tracing.EnvTracesProtocol + "=http/protobuf",
	}
	if getenv(tracing.EnvBatchDelay) == "" {
		env = append(env, tracing.EnvBatchDelay+"="+strconv.FormatInt(devBatchDelay.Milliseconds(), 10))
	}
	return env
}
