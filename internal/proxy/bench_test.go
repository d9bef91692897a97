package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/metropolis-dev/metro/internal/proxy"
)

// BenchmarkGateway measures the gateway's per-request path in ServeHTTP:
// a routed request goes to a real embedded NATS server and an SDK worker
// in this process (so allocations include the worker's), 32 requests in
// flight on 2 CPUs; an unknown route stops at the route table.
func BenchmarkGateway(b *testing.B) {
	e := newEnv(b, proxy.Config{})
	e.worker("bench", map[string]http.HandlerFunc{
		"GET /hello/{name}": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "hello "+r.PathValue("name"))
		},
	})
	for _, bc := range []struct {
		name, target string
		status       int
	}{
		{"routed", "/hello/world?x=1", 200},
		{"unknown", "/nowhere/1", 404},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			// Requests wait on NATS round trips: keep enough in flight to
			// measure throughput rather than one client's latency.
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest("GET", bc.target, nil)
				req.RemoteAddr = "10.1.2.3:4567"
				req.Header.Set("User-Agent", "bench")
				req.Header.Set("Accept", "*/*")
				for pb.Next() {
					rec := httptest.NewRecorder()
					e.gw.ServeHTTP(rec, req)
					if rec.Code != bc.status {
						b.Errorf("status %d: %s", rec.Code, rec.Body)
						return
					}
				}
			})
		})
	}
}
