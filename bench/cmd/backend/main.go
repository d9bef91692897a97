// Command backend serves the hello handler directly over HTTP: scenario (a)
// of the benchmark, and the upstream of the nginx and ReverseProxy scenarios.
// Under /blob it serves the large-transfer scenario's routes (bench/blob).
package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/metropolis-dev/metro/bench/blob"
	"github.com/metropolis-dev/metro/bench/hello"
	"github.com/metropolis-dev/metro/bench/internal/httpserve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		slog.Error("backend", "err", err)
		os.Exit(1)
	}
}

// run serves until ctx ends and prints the bound address once ready.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8081", "address to serve HTTP on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return httpserve.Run(ctx, *listen, handler(), stdout)
}

// handler answers hello on every path but /blob's: the hello scenarios
// pay one prefix test, not a ServeMux lookup.
func handler() http.Handler {
	blobs := blob.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, blob.Path) {
			blobs.ServeHTTP(w, r)
			return
		}
		hello.ServeHTTP(w, r)
	})
}
