package tracing

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func at(ms float64) time.Time {
	return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(ms * float64(time.Millisecond)))
}

// sample is a POST /orders whose catalog call failed.
var sample = Trace{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Spans: []SpanData{
	{SpanID: "a1", Name: "POST /orders", Service: "gateway", Kind: "server", Start: at(0), DurationMS: 10, Status: "error", HTTPStatus: 500, RequestID: "r-1", Error: "500 Internal Server Error"},
	{SpanID: "a2", ParentSpanID: "a1", Name: "send POST /orders", Service: "gateway", Kind: "client", Subject: "orders.POST", Start: at(0.5), DurationMS: 9, Status: "error", HTTPStatus: 500},
	{SpanID: "b1", ParentSpanID: "a2", Name: "POST /orders", Service: "orders", Kind: "server", Subject: "orders.POST", Start: at(1), DurationMS: 8, Status: "error", HTTPStatus: 500, RequestID: "r-1"},
	{SpanID: "b2", ParentSpanID: "b1", Name: "send products.apple.GET", Service: "orders", Kind: "client", Subject: "products.apple.GET", Start: at(2), DurationMS: 5, Status: "error", HTTPStatus: 500},
	{SpanID: "c1", ParentSpanID: "b2", Name: "GET /products/{id}", Service: "catalog", Kind: "server", Subject: "products.apple.GET", Start: at(2.5), DurationMS: 4, Status: "error", HTTPStatus: 500, Error: "500 Internal Server Error"},
}}

func TestRenderGolden(t *testing.T) {
	var b bytes.Buffer
	if err := Render(&b, sample); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "render.golden")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("render:\n%s\nwant:\n%s", b.String(), want)
	}
	// Independent of the golden: the time in NATS is the gap between a
	// sender's span and the worker's under it, both ways (0.5ms + 0.5ms
	// for the gateway -> orders hop).
	nodes := Tree(sample)
	if nodes[2].SpanID != "b1" || nodes[2].NATS != time.Millisecond {
		t.Errorf("NATS time of %s = %s, want 1ms", nodes[2].SpanID, nodes[2].NATS)
	}
	if nodes[4].Depth != 4 {
		t.Errorf("catalog span depth %d, want 4", nodes[4].Depth)
	}
}

func TestBufferBounds(t *testing.T) {
	b := NewBuffer(2, 3)
	add := func(trace, rid string, n int) {
		for i := range n {
			s := SpanData{SpanID: strings.Repeat("x", i+1), Start: at(float64(i))}
			if i == 0 {
				s.RequestID = rid
			}
			b.Add([]SpanData{s}, []string{trace})
		}
	}
	add("t1", "r1", 5)
	add("t2", "r2", 1)
	if tr, ok := b.Get("r1"); !ok || len(tr.Spans) != 3 || tr.TraceID != "t1" {
		t.Fatalf("r1: %v %+v, want 3 spans of t1 (the per-trace cap)", ok, tr)
	}
	add("t3", "r3", 1) // pushes out t1, the oldest
	if _, ok := b.Get("r1"); ok {
		t.Error("r1 still found after its trace was evicted")
	}
	if _, ok := b.Get("t1"); ok {
		t.Error("t1 still found after eviction")
	}
	for _, id := range []string{"t2", "r2", "t3", "r3"} {
		if _, ok := b.Get(id); !ok {
			t.Errorf("%s not found", id)
		}
	}
	if b.Len() != 2 {
		t.Errorf("Len = %d, want 2", b.Len())
	}
}

func TestIDs(t *testing.T) {
	for _, tc := range []struct{ in, trace, span string }{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", "", ""},
		{"garbage", "", ""},
		{"", "", ""},
	} {
		tr, sp := IDs(tc.in)
		if tr != tc.trace || sp != tc.span {
			t.Errorf("IDs(%q) = %q, %q; want %q, %q", tc.in, tr, sp, tc.trace, tc.span)
		}
	}
}
