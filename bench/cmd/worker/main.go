// Command worker is the metro side of scenarios (d) and (e): the hello
// handler served over NATS with the metro SDK, exactly as a user would
// write it. With -blob it is instead the metro side of the large-transfer
// scenario (x): the worker "blob" serving bench/blob's routes. It reads
// NATS_URL (and METRO_PREFIX) from the environment.
// BENCH_PPROF=ADDR also serves net/http/pprof on ADDR, to profile the
// worker under load; bench/run never sets it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // registers on http.DefaultServeMux, served only with BENCH_PPROF
	"os"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/bench/blob"
	"github.com/metropolis-dev/metro/bench/hello"
	"github.com/metropolis-dev/metro/bench/internal/httpserve"
)

func main() {
	fs := flag.NewFlagSet("worker", flag.ExitOnError)
	serveBlob := fs.Bool("blob", false, "serve bench/blob's routes as the worker \"blob\" instead of hello")
	_ = fs.Parse(os.Args[1:])
	var err error
	if *serveBlob {
		err = run(context.Background(), os.Stdout, os.Getenv("BENCH_PPROF"), "blob", blobWorker())
	} else {
		err = run(context.Background(), os.Stdout, os.Getenv("BENCH_PPROF"), "hello", helloWorker())
	}
	if err != nil {
		slog.Error("worker", "err", err)
		os.Exit(1)
	}
}

func helloWorker() *metro.Worker {
	w := metro.NewWorker("hello")
	w.HandleFunc(hello.Pattern, hello.ServeHTTP)
	return w
}

func blobWorker() *metro.Worker {
	w := metro.NewWorker("blob")
	w.HandleFunc(blob.Download, blob.ServeDownload)
	w.HandleFunc(blob.Upload, blob.ServeUpload)
	w.HandleFunc(blob.Stream, blob.ServeStream)
	return w
}

// run serves w until ctx ends or the process gets SIGTERM or SIGINT; it
// prints "ready" once the routes are subscribed and announced.
func run(ctx context.Context, stdout io.Writer, pprofAddr, name string, w *metro.Worker) error {
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
		return fmt.Errorf("serving %s: %w", name, err)
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("serving %s: %w", name, err)
	}
	return nil
}
