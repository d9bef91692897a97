// Package orders is the shop's order desk: it takes orders, prices them by
// asking the catalog worker over NATS (metro.Transport), keeps them in
// memory and streams each one placed to the clients of a live feed
// (feed.go).
package orders

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/metropolis-dev/metro"
)

// Item is one line of an order.
type Item struct {
	Product  string `json:"product"`
	Quantity int    `json:"quantity"`
	Price    int    `json:"price,omitempty"` // unit price in cents, from the catalog
}

// Order is a priced order.
type Order struct {
	ID    string `json:"id"`
	Items []Item `json:"items"`
	Total int    `json:"total"`
	// Customer is the subject of the token the gateway verified.
	Customer string `json:"customer,omitempty"`
}

// Desk holds the orders; Catalog calls the catalog worker.
type Desk struct {
	Catalog *http.Client
	// Keepalive is how often an idle feed sends a comment (0: 15s).
	Keepalive time.Duration
	// Closing, once closed, ends every feed whole: the worker is
	// stopping, and its feeds' clients should reconnect to another
	// replica instead of holding up the drain.
	Closing <-chan struct{}

	mu     sync.Mutex
	orders map[string]Order
	next   int
	feeds  map[chan Order]bool // the clients of GET /orders/feed
}

// New returns an empty desk that prices orders through catalog.
func New(catalog *http.Client) *Desk {
	return &Desk{Catalog: catalog, orders: map[string]Order{}}
}

// Routes maps patterns to handlers; main registers them with a worker.
func (d *Desk) Routes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"POST /orders":     d.create,
		"GET /orders":      d.list,
		"GET /orders/{id}": d.get,
		"GET /orders/feed": d.feed,
	}
}

// MaxQuantity bounds one line of an order.
const MaxQuantity = 100

func (d *Desk) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Items []Item `json:"items"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		metro.Error(w, r, http.StatusBadRequest, "body is not an order: "+err.Error())
		return
	}
	if msg := validate(in.Items); msg != "" {
		metro.Error(w, r, http.StatusUnprocessableEntity, msg)
		return
	}
	o := Order{Items: in.Items}
	o.Customer, _ = metro.Claims(r)["sub"].(string)
	for i := range o.Items {
		price, err := d.price(r, o.Items[i].Product)
		var unknown errUnknownProduct
		switch {
		case errors.As(err, &unknown):
			metro.Error(w, r, http.StatusUnprocessableEntity, err.Error())
			return
		case err != nil:
			metro.Error(w, r, http.StatusServiceUnavailable, "cannot price the order: "+err.Error())
			return
		}
		o.Items[i].Price = price
		o.Total += price * o.Items[i].Quantity
	}
	d.mu.Lock()
	d.next++
	o.ID = strconv.Itoa(d.next)
	d.orders[o.ID] = o
	d.announce(o)
	d.mu.Unlock()
	w.Header().Set("Location", "/orders/"+o.ID)
	writeJSON(w, http.StatusCreated, o)
}

func validate(items []Item) string {
	if len(items) == 0 {
		return "an order needs at least one item"
	}
	var bad []string
	for i, it := range items {
		if it.Product == "" {
			bad = append(bad, fmt.Sprintf("items[%d].product is empty", i))
		}
		if it.Quantity < 1 || it.Quantity > MaxQuantity {
			bad = append(bad, fmt.Sprintf("items[%d].quantity must be 1 to %d", i, MaxQuantity))
		}
		if it.Price != 0 {
			bad = append(bad, fmt.Sprintf("items[%d].price is set by the shop, not the client", i))
		}
	}
	return strings.Join(bad, "; ")
}

type errUnknownProduct string

func (e errUnknownProduct) Error() string { return "unknown product " + strconv.Quote(string(e)) }

// price asks the catalog for a product's price, within the deadline and
// under the request id of the order being placed.
func (d *Desk) price(r *http.Request, product string) (int, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "metro:///products/"+url.PathEscape(product), nil)
	if err != nil {
		return 0, err
	}
	resp, err := d.Catalog.Do(req)
	if err != nil {
		return 0, fmt.Errorf("catalog: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return 0, errUnknownProduct(product)
	default:
		return 0, fmt.Errorf("catalog answered %s", resp.Status)
	}
	var p struct {
		Price int `json:"price"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return 0, fmt.Errorf("catalog: %w", err)
	}
	return p.Price, nil
}

func (d *Desk) get(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	o, ok := d.orders[r.PathValue("id")]
	d.mu.Unlock()
	if !ok {
		metro.Error(w, r, http.StatusNotFound, "no order "+r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, o)
}

func (d *Desk) list(w http.ResponseWriter, _ *http.Request) {
	d.mu.Lock()
	out := make([]Order, 0, len(d.orders))
	for _, o := range d.orders {
		out = append(out, o)
	}
	d.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.Atoi(out[i].ID)
		b, _ := strconv.Atoi(out[j].ID)
		return a < b
	})
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
