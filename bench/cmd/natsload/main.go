// Command natsload is scenario (f) of the benchmark: raw NATS request/reply
// with no HTTP anywhere, the other half of the ceiling 1/(1/a + 1/f).
//
//	natsload respond -nats URL    # a plain nats.go responder
//	natsload load -nats URL -c 64 -d 10s
//
// load runs -c requesters on one connection, as the gateway does, and prints
// one JSON object: requests, errors, requests/s and latency percentiles.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		slog.Error("natsload", "err", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: natsload respond|load [flags]")

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	fs := flag.NewFlagSet("natsload "+args[0], flag.ContinueOnError)
	url := fs.String("nats", nats.DefaultURL, "NATS server URL")
	subj := fs.String("subject", "bench.hello", "subject to request or answer")
	switch args[0] {
	case "respond":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return respond(ctx, *url, *subj, stdout)
	case "load":
		var cfg loadConfig
		fs.IntVar(&cfg.Concurrency, "c", 64, "concurrent requesters")
		fs.DurationVar(&cfg.Duration, "d", 10*time.Second, "measured duration")
		fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured load before the measurement")
		fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "timeout of one request")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if cfg.Concurrency < 1 || cfg.Duration <= 0 {
			return fmt.Errorf("load: -c must be at least 1 and -d positive")
		}
		nc, err := nats.Connect(*url, nats.Name("natsload"))
		if err != nil {
			return fmt.Errorf("connecting to %s: %w", *url, err)
		}
		defer nc.Close()
		res, err := load(ctx, nc, *subj, cfg)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		return enc.Encode(res)
	default:
		return errUsage
	}
}
