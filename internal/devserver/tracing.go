package devserver

import (
	"context"
	"strconv"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/metropolis-dev/metro/internal/tracing"
)

// devBatchDelay is how long finished spans wait before they are sent in
// metro dev: short, so that `metro trace` finds a request just made.
const devBatchDelay = 100 * time.Millisecond

// devTracing is metro dev's trace collector and the gateway's provider.
type devTracing struct {
	col *tracing.Collector
	tp  *sdktrace.TracerProvider
}

// startTracing starts the collector on loopback and the in-process
// gateway's provider, which exports to the collector and, when the
// OTEL_* variables name a backend, there too.
func startTracing(ctx context.Context, getenv func(string) string) (*devTracing, error) {
	col, err := tracing.StartCollector("127.0.0.1:0", tracing.NewBuffer(0, 0))
	if err != nil {
		return nil, err
	}
	tp, err := tracing.NewProvider(ctx, tracing.Options{
		Service:      "gateway",
		Getenv:       getenv,
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
// name becomes its service name. Spans go to the collector unless the
// user's OTEL_* variables name a backend, which is then passed through
// as it is, together with the rest of the environment.
func (t *devTracing) workerEnv(name string, getenv func(string) string) []string {
	env := []string{tracing.EnvServiceName + "=" + name}
	if getenv(tracing.EnvEndpoint) == "" && getenv(tracing.EnvTracesEndpoint) == "" {
		env = append(env,
			tracing.EnvTracesEndpoint+"="+t.col.TracesEndpoint(),
			tracing.EnvTracesProtocol+"=http/protobuf")
	}
	if getenv(tracing.EnvBatchDelay) == "" {
		env = append(env, tracing.EnvBatchDelay+"="+strconv.FormatInt(devBatchDelay.Milliseconds(), 10))
	}
	return env
}
