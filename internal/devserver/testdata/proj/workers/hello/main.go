// Command hello is the smallest metro worker, for metro dev's tests.
package main

import (
	"context"
	"log"
	"time"

	"github.com/metropolis-dev/metro"
)

func main() {
	w := metro.NewWorker("hello")
	w.HandleFunc("GET /hello", hello)
	// TODO(devserver): plain context.Background() once the SDK's Run no
	// longer needs a deadline to flush its subscriptions.
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(1000*time.Hour))
	defer cancel()
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
