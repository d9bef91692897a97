// Command orders is the shop's order worker.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/examples/shop/orders"
)

func main() {
	// The signals that make the worker drain end the live feeds too: a
	// feed would otherwise run until its route's timeout.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	w := metro.NewWorker("orders")
	desk := orders.New(w.Client())
	desk.Closing = ctx.Done()
	for pattern, h := range desk.Routes() {
		w.HandleFunc(pattern, h)
	}
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
