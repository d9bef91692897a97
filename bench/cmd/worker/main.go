// Command worker is the metro side of scenarios (d) and (e): the hello
// handler served over NATS with the metro SDK, exactly as a user would
// write it. It reads NATS_URL (and METRO_PREFIX) from the environment.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/bench/hello"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		slog.Error("worker", "err", err)
		os.Exit(1)
	}
}

// run serves until ctx ends or the process gets SIGTERM or SIGINT; it
// prints "ready" once the route is subscribed and announced.
func run(ctx context.Context, stdout io.Writer) error {
	w := metro.NewWorker("hello")
	w.HandleFunc(hello.Pattern, hello.ServeHTTP)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
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
