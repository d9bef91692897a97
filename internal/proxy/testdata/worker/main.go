// Command worker is a metro worker that the gateway tests run as a real
// child process: GET /work/{n} answers with its pid and n after
// $WORK_DELAY, so a test can tell replicas apart and keep requests in
// flight while one is stopped.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/metropolis-dev/metro"
)

func main() {
	delay, err := time.ParseDuration(os.Getenv("WORK_DELAY"))
	if err != nil {
		delay = 0
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	w := metro.NewWorker("load", metro.WithLogger(log))
	pid := os.Getpid()
	w.HandleFunc("GET /work/{n}", func(rw http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		fmt.Fprintf(rw, "%d %s", pid, r.PathValue("n"))
	})
	if err := w.Run(context.Background()); err != nil {
		log.Error("worker failed", "err", err)
		os.Exit(1)
	}
}
