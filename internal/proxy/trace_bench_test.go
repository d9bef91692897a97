package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/proxy"
	"github.com/metropolis-dev/metro/internal/tracing"
)

// BenchmarkGatewayTraced is BenchmarkGateway's routed request with every
// request sampled: the gateway and the worker each make their spans and
// export them over OTLP/HTTP to a collector in this process, as metro dev
// does. Compare with BenchmarkGateway/routed for the cost of tracing.
func BenchmarkGatewayTraced(b *testing.B) {
	col, err := tracing.StartCollector("127.0.0.1:0", tracing.NewBuffer(0, 0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = col.Close() })
	provider := func(service string) *tracing.Options {
		return &tracing.Options{Service: service, Getenv: func(string) string { return "" },
			Also: []string{col.TracesEndpoint()}, BatchTimeout: 100 * time.Millisecond}
	}
	gwTP, err := tracing.NewProvider(b.Context(), *provider("gateway"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tracing.Shutdown(gwTP) })
	wTP, err := tracing.NewProvider(b.Context(), *provider("bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tracing.Shutdown(wTP) })
	e := newEnv(b, proxy.Config{TracerProvider: gwTP})
	e.worker("bench", map[string]http.HandlerFunc{
		"GET /hello/{name}": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "hello "+r.PathValue("name"))
		},
	}, metro.WithTracerProvider(wTP))
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/hello/world?x=1", nil)
		req.RemoteAddr = "10.1.2.3:4567"
		req.Header.Set("User-Agent", "bench")
		req.Header.Set("Accept", "*/*")
		for pb.Next() {
			// The gateway writes the traceparent of its span into the
			// request's header; each request starts without one.
			req.Header.Del("Traceparent")
			req.Header.Del("Tracestate")
			rec := httptest.NewRecorder()
			e.gw.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("status %d: %s", rec.Code, rec.Body)
				return
			}
		}
	})
}
