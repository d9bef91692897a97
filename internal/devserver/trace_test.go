package devserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/tracing"
)

// TestDevTrace runs metro dev on a copy of examples/shop, with real worker
// processes exporting over OTLP/HTTP to metro dev's collector, and follows
// one POST /orders (which asks the catalog for prices) by the request id
// the client got: its trace nests gateway -> orders -> catalog, each span
// inside its parent's time and named after the process that made it.
func TestDevTrace(t *testing.T) {
	t.Parallel()
	dir := copyProject(t, e2eProject)
	d := startDev(t, dir, "DEVSERVER_TEST_GRACE=5s", "DEVSERVER_TEST_NATS_PORT=0",
		"METRO_LISTEN=127.0.0.1:0", "METRO_ADMIN=127.0.0.1:0")
	st := d.state(t, 3*time.Minute)
	if st.TraceURL == "" {
		t.Fatalf("dev.json has no trace_url: %+v", st)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", st.GatewayURL+"/orders",
		strings.NewReader(`{"items":[{"product":"apple","quantity":3}]}`))
	req.Header.Set("Authorization", "Bearer "+shopToken(t, dir))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /orders: %s", resp.Status)
	}
	rid := resp.Header.Get("X-Request-Id")

	// Spans arrive in batches from three processes: ask until the
	// catalog's is in.
	want := []struct{ service, kind string }{
		{"gateway", "server"}, {"gateway", "client"},
		{"orders", "server"}, {"orders", "client"},
		{"catalog", "server"},
	}
	var tr tracing.Trace
	metrotest.WaitFor(t, "the catalog's span in the trace of "+rid, 30*time.Second, func() bool {
		var out bytes.Buffer
		err := tracing.Show(t.Context(), tracing.ShowOptions{ID: rid, Dir: dir, Wait: time.Second, JSON: true, Out: &out})
		if err != nil {
			return false
		}
		tr = tracing.Trace{}
		if err := json.Unmarshal(out.Bytes(), &tr); err != nil {
			t.Fatalf("metro trace --json: %v\n%s", err, out.String())
		}
		return len(tr.Spans) >= len(want) && tr.Spans[len(tr.Spans)-1].Service == "catalog"
	})
	parent := tracing.SpanData{}
	for i, w := range want {
		var found *tracing.SpanData
		for j, s := range tr.Spans {
			if s.Service == w.service && s.Kind == w.kind && (i == 0 || s.ParentSpanID == parent.SpanID) {
				found = &tr.Spans[j]
				break
			}
		}
		if found == nil {
			t.Fatalf("no %s span of %s under %q in %+v", w.kind, w.service, parent.Name, tr.Spans)
		}
		if i > 0 && (found.Start.Before(parent.Start) || found.End().After(parent.End())) {
			t.Errorf("%s %q [%s, %s] is not inside %s %q [%s, %s]", found.Service, found.Name, found.Start, found.End(),
				parent.Service, parent.Name, parent.Start, parent.End())
		}
		parent = *found
	}
	if tr.Spans[0].RequestID != rid || tr.Spans[0].HTTPStatus != http.StatusCreated {
		t.Errorf("gateway span: request id %q, status %d; want %q, 201", tr.Spans[0].RequestID, tr.Spans[0].HTTPStatus, rid)
	}

	// The terminal form names each process and the time spent in NATS.
	var text bytes.Buffer
	if err := tracing.Show(t.Context(), tracing.ShowOptions{ID: tr.TraceID, Dir: dir, Out: &text}); err != nil {
		t.Fatal(err)
	}
	t.Logf("metro trace %s:\n%s", rid, text.String())
	for _, s := range []string{"trace " + tr.TraceID, "request " + rid, "gateway", "orders", "catalog", "send products.apple.GET"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("metro trace output lacks %q:\n%s", s, text.String())
		}
	}
}
