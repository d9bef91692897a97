// Package catalog is the shop's product catalog: a read-only, in-memory
// list of products served as JSON.
package catalog

import (
	"encoding/json"
	"net/http"
	"sort"

	"github.com/metropolis-dev/metro"
)

// Product is one thing the shop sells; prices are in cents.
type Product struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Price int    `json:"price"`
}

// Products is the catalog's stock.
var Products = map[string]Product{
	"apple":  {ID: "apple", Name: "Apple", Price: 50},
	"banana": {ID: "banana", Name: "Banana", Price: 25},
	"cherry": {ID: "cherry", Name: "Cherry (250 g)", Price: 400},
}

// Routes maps patterns to handlers; main registers them with a worker.
func Routes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /products":      list,
		"GET /products/{id}": get,
	}
}

func list(w http.ResponseWriter, _ *http.Request) {
	out := make([]Product, 0, len(Products))
	for _, p := range Products {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, out)
}

func get(w http.ResponseWriter, r *http.Request) {
	p, ok := Products[r.PathValue("id")]
	if !ok {
		metro.Error(w, r, http.StatusNotFound, "no product "+r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
