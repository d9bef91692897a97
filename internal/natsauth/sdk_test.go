package natsauth_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/natsauth"
)

// TestWorkerFromEnvironment: the SDK connects with NATS_NKEY as metro dev
// and metro deploy hand it, serves its permitted routes, and a route it
// is not permitted ends Run with an error naming the subject instead of
// a worker that silently answers nothing.
func TestWorkerFromEnvironment(t *testing.T) {
	b := startBus(t, natsauth.Project{Workers: []natsauth.Worker{{Name: "catalog", Routes: []string{"GET /products"}}}})
	t.Setenv("NATS_NKEY", b.Seed(natsauth.WorkerID("catalog")))
	quiet := metro.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

	t.Run("permitted", func(t *testing.T) {
		w := metro.NewWorker("catalog", metro.WithNATSURL(b.ClientURL()), quiet)
		w.HandleFunc("GET /products", func(rw http.ResponseWriter, _ *http.Request) { io.WriteString(rw, "apple") })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
		select {
		case <-w.Ready():
		case err := <-done:
			t.Fatalf("Run ended: %v", err)
		}
		gw := b.Connect(t, "gateway")
		rep, err := gw.Request("products.GET", nil, 5*time.Second)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		if string(rep.Data) != "apple" {
			t.Fatalf("reply %q", rep.Data)
		}
	})

	t.Run("outside its routes", func(t *testing.T) {
		w := metro.NewWorker("catalog", metro.WithNATSURL(b.ClientURL()), quiet)
		w.HandleFunc("GET /products", func(http.ResponseWriter, *http.Request) {})
		w.HandleFunc("PUT /products/{id}", func(http.ResponseWriter, *http.Request) {})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := w.Run(ctx)
		if err == nil || !strings.Contains(err.Error(), `refused the route PUT /products/{id} (products.*.PUT)`) || !strings.Contains(err.Error(), `"products.*.PUT"`) {
			t.Fatalf("Run: %v, want a refusal naming products.*.PUT", err)
		}
	})

	t.Run("anonymous", func(t *testing.T) {
		t.Setenv("NATS_NKEY", "")
		w := metro.NewWorker("catalog", metro.WithNATSURL(b.ClientURL()), quiet)
		w.HandleFunc("GET /products", func(http.ResponseWriter, *http.Request) {})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := w.Run(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Fatalf("Run: %v, want an authorization refusal", err)
		}
	})
}
