// Command orders is the shop's order worker.
package main

import (
	"context"
	"log"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/examples/shop/orders"
)

func main() {
	w := metro.NewWorker("orders")
	desk := orders.New(w.Client())
	for pattern, h := range desk.Routes() {
		w.HandleFunc(pattern, h)
	}
	if err := w.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}
