// Command worker is the metro side of scenarios (d) and (e): the hello
// handler served over NATS with the metro SDK, exactly as a user would
// write it. It reads NATS_URL (and METRO_PREFIX) from the environment.
// BENCH_PPROF=ADDR also serves net/http/pprof on ADDR, to profile the
// worker under load; bench/run never sets it.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // registers on http.DefaultServeMux, served only with BENCH_PPROF
	"os"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/bench/hello"
	"github.com/metropolis-dev/metro/bench/internal/httpserve"
)

func main() {
	if err := run(context.Background(), os.Stdout, os.Getenv("BENCH_PPROF")); err != nil {
		slog.Error("worker", "err", err)
		os.Exit(1)
	}
}

// run serves until ctx ends or the process gets SIGTERM or SIGINT; it
// prints "ready" once the route is subscribed and announced.
func run(ctx context.Context, stdout io.Writer, pprofAddr string) error {
	w := metro.NewWorker("hello")
	w.HandleFunc(hello.Pattern, hello.ServeHTTP)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if pprofAddr != "" {
		perr := make(chan error, 1)
		go func() { perr <- httpserve.Run(ctx, pprofAddr, http.DefaultServeMux, io.Discard) }()
		defer func() {
			cancel()
			if err := <-perr; err != nil {
				slog.Error("worker pprof", "err", err)
			}
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	select {
	case <-w.Ready():
		if _, err := fmt.Fprintln(stdout, "ready"); err != nil {
			cancel()
			<-errc
			return fmt.Errorf("announcing readiness: %w", err)
		}
	case err := <-errc:
		return fmt.Errorf("serving hello: %w", err)
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("serving hello: %w", err)
	}
	return nil
}
