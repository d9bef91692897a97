// Command catalog is the shop's catalog worker.
package main

import (
	"context"
	"log"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/examples/shop/catalog"
)

func main() {
	w := metro.NewWorker("catalog")
	for pattern, h := range catalog.Routes() {
		w.HandleFunc(pattern, h)
	}
	if err := w.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}
