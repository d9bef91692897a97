package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// healthServer answers probes: /healthz while the process runs its loop,
// /readyz while connected with subscriptions active and not draining; and
// /metrics, the worker's own series.
type healthServer struct {
	srv  *http.Server
	done chan struct{}
}

func startHealth(addr string, w *Worker) (*healthServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("health listener on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) { rw.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		if !w.IsReady() {
			http.Error(rw, "not ready", http.StatusServiceUnavailable)
			return
		}
		rw.Write([]byte("ok\n"))
	})
	if g := w.metrics.gatherer; g != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	h := &healthServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Error("health listener", "err", err)
		}
	}()
	return h, nil
}

func (h *healthServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = h.srv.Shutdown(ctx)
	<-h.done
}

// IsReady reports whether the worker takes requests now.
func (w *Worker) IsReady() bool {
	select {
	case <-w.ready:
	default:
		return false
	}
	return !w.draining.Load() && w.nc != nil && w.nc.IsConnected()
}
