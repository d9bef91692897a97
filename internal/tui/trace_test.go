package tui

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/metropolis-dev/metro/internal/tap"
	"github.com/metropolis-dev/metro/internal/tracing"
)

// TestTraceFrame: t on an exchange opens its trace, fetched over HTTP
// from a collector like metro dev's, with the exchange's span (the one
// that sent it) and the worker's span under it marked.
func TestTraceFrame(t *testing.T) {
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
	spans := []tracing.SpanData{
		{SpanID: "00000000000000a1", Name: "POST /orders", Service: "gateway", Kind: "server", Start: at(0), DurationMS: 10, Status: "unset", HTTPStatus: 201, RequestID: "r-1"},
		{SpanID: "00000000000000a2", ParentSpanID: "00000000000000a1", Name: "send POST /orders", Service: "gateway", Kind: "client", Subject: "orders.POST", Start: at(0.5), DurationMS: 9, Status: "unset"},
		{SpanID: "00000000000000b1", ParentSpanID: "00000000000000a2", Name: "POST /orders", Service: "orders", Kind: "server", Subject: "orders.POST", Start: at(1), DurationMS: 8, Status: "unset"},
		{SpanID: "00000000000000b2", ParentSpanID: "00000000000000b1", Name: "send products.apple.GET", Service: "orders", Kind: "client", Subject: "products.apple.GET", Start: at(2), DurationMS: 5, Status: "error", Error: "503"},
		{SpanID: "00000000000000c1", ParentSpanID: "00000000000000b2", Name: "GET /products/{id}", Service: "catalog", Kind: "server", Subject: "products.apple.GET", Start: at(2.5), DurationMS: 4, Status: "error"},
	}
	buf := tracing.NewBuffer(0, 0)
	buf.Add(spans, []string{traceID, traceID, traceID, traceID, traceID})
	col, err := tracing.StartCollector("127.0.0.1:0", buf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = col.Close() })
	var mu sync.Mutex
	var asked []string
	traces := func(ctx context.Context, id string) (tracing.Trace, error) {
		mu.Lock()
		asked = append(asked, id)
		mu.Unlock()
		return tracing.Fetch(ctx, col.URL(), id)
	}

	ex := tap.Exchange{Seq: 1, Time: t0, Subject: "products.apple.GET", Method: "GET", Path: "/products/apple", RequestID: "r-1",
		Outcome: tap.OK, Status: 503, Latency: 5 * time.Millisecond, Worker: "catalog",
		Request: msg("", "Traceparent", "00-"+traceID+"-00000000000000b2-01", "Tracestate", "metro=00000000000000b1")}
	f := tap.NewFeed(10)
	m := New(f, Config{Title: "nats://127.0.0.1:4222  >", Location: time.UTC, Traces: traces})
	tm := teatest.NewTestModel(t, syncModel{m}, teatest.WithInitialTermSize(100, 18))
	sendAndWait(t, tm, TickMsg{Time: t0})
	f.Add(ex)
	sendAndWait(t, tm, TickMsg{Time: t0.Add(time.Second)})
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{'t'}})
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("GET /products/{id}")) },
		teatest.WithDuration(10*time.Second))
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	final := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(syncModel).Model
	view := final.View()
	teatest.RequireEqualOutput(t, []byte(view))
	// Beside the golden: the lookup was by the trace id of the exchange's
	// traceparent, and the marked lines are the exchange's two spans.
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 1 || asked[0] != traceID {
		t.Errorf("looked up %v, want [%s]", asked, traceID)
	}
	var marked []string
	for _, l := range strings.Split(view, "\n") {
		if strings.HasPrefix(l, "> ") {
			marked = append(marked, strings.Fields(l)[1])
		}
	}
	if strings.Join(marked, ",") != "orders,catalog" {
		t.Errorf("marked lines by service: %v, want orders (the sending span), catalog (the worker's)", marked)
	}
}
