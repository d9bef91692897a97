package tracing_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
	"github.com/metropolis-dev/metro/internal/tracing"
)

var quiet = slog.New(slog.DiscardHandler)

// shop is a gateway and two workers in this process, each with a tracer
// provider of its own exporting over OTLP/HTTP to one collector, as three
// processes would: "orders" calls "catalog" through its Client.
type shop struct {
	nc  *nats.Conn
	col *tracing.Collector
	buf *tracing.Buffer
	url string
}

func startShop(t *testing.T) *shop {
	t.Helper()
	buf := tracing.NewBuffer(0, 0)
	col, err := tracing.StartCollector("127.0.0.1:0", buf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = col.Close() })
	provider := func(service string) *tracing.Options {
		return &tracing.Options{
			Service:      service,
			Getenv:       func(string) string { return "" },
			Also:         []string{col.TracesEndpoint()},
			BatchTimeout: 20 * time.Millisecond,
		}
	}
	newTP := func(service string) metro.Option {
		tp, err := tracing.NewProvider(t.Context(), *provider(service))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tracing.Shutdown(tp) })
		return metro.WithTracerProvider(tp)
	}
	ns := natstest.Run(t)
	nc := natstest.Connect(t, ns)
	gwTP, err := tracing.NewProvider(t.Context(), *provider("gateway"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tracing.Shutdown(gwTP) })
	gw, srv := metrotest.StartGateway(t, nc, proxy.Config{
		TracerProvider: gwTP,
		Logger:         quiet,
		Routes:         []proxy.RouteConfig{{Match: "GET /products/{id}", Timeout: 300 * time.Millisecond}},
	})
	metrotest.StartWorker(t, ns.ClientURL(), "catalog", metrotest.Routes(map[string]http.HandlerFunc{
		"GET /products/{id}": func(w http.ResponseWriter, r *http.Request) {
			switch r.PathValue("id") {
			case "boom":
				http.Error(w, "the catalog broke", http.StatusInternalServerError)
			case "slow":
				<-r.Context().Done()
			default:
				io.WriteString(w, `{"price":100}`)
			}
		},
	}), metro.WithLogger(quiet), newTP("catalog"))
	metrotest.StartWorker(t, ns.ClientURL(), "orders", func(w *metro.Worker) map[string]http.HandlerFunc {
		client := w.Client()
		return map[string]http.HandlerFunc{
			"POST /orders": func(rw http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				// A handler's own span, from its request's context.
				ctx, span := tracerOf(r.Context()).Start(r.Context(), "price order")
				defer span.End()
				req, _ := http.NewRequestWithContext(ctx, "GET", "metro:///products/"+string(body), nil)
				resp, err := client.Do(req)
				if err != nil {
					http.Error(rw, err.Error(), http.StatusBadGateway)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					http.Error(rw, "catalog answered "+resp.Status, http.StatusInternalServerError)
					return
				}
				rw.WriteHeader(http.StatusCreated)
			},
		}
	}, metro.WithLogger(quiet), newTP("orders"))
	metrotest.WaitRoutes(t, gw, "GET /products/{id}", "POST /orders")
	return &shop{nc: nc, col: col, buf: buf, url: srv.URL}
}

// do sends a request with a request id and returns the status.
func (s *shop) do(t *testing.T, method, path, body, rid string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, s.url+path, strings.NewReader(body))
	req.Header.Set("X-Request-Id", rid)
	resp, _ := metrotest.Do(t, req)
	if got := resp.Header.Get("X-Request-Id"); got != rid {
		t.Fatalf("X-Request-Id = %q, want %q", got, rid)
	}
	return resp.StatusCode
}

// waitTrace polls the collector, through its HTTP lookup, until the trace
// of request id rid has n spans.
func (s *shop) waitTrace(t *testing.T, rid string, n int) tracing.Trace {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tr, err := tracing.Fetch(t.Context(), s.col.URL(), rid)
		if err == nil && len(tr.Spans) >= n {
			return tr
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace of %s: %d spans (%v), want %d: %+v", rid, len(tr.Spans), err, n, tr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chain checks that the spans, root first, each have the next as child,
// with the service, kind and name given, and (unless a timeout let a
// worker outlive the wait for it) inside the parent's time.
func chain(t *testing.T, tr tracing.Trace, want [][3]string, timedOut ...bool) []tracing.SpanData {
	t.Helper()
	var out []tracing.SpanData
	parent := ""
	for i, w := range want {
		var found *tracing.SpanData
		for j := range tr.Spans {
			s := tr.Spans[j]
			if s.ParentSpanID == parent && s.Service == w[0] && s.Kind == w[1] && s.Name == w[2] {
				found = &tr.Spans[j]
			}
		}
		if found == nil && i == 0 {
			// The root's parent is the client's span, if it sent one.
			for j := range tr.Spans {
				s := tr.Spans[j]
				if s.Service == w[0] && s.Kind == w[1] && s.Name == w[2] {
					found = &tr.Spans[j]
				}
			}
		}
		if found == nil {
			t.Fatalf("no span %v under %q in:\n%s", w, parent, dump(tr))
		}
		if i > 0 && len(timedOut) == 0 {
			p := out[i-1]
			if found.Start.Before(p.Start) || found.End().After(p.End()) {
				t.Errorf("span %q [%s, %s] is not inside its parent %q [%s, %s]", found.Name, found.Start, found.End(), p.Name, p.Start, p.End())
			}
		}
		out = append(out, *found)
		parent = found.SpanID
	}
	return out
}

func dump(tr tracing.Trace) string {
	var b strings.Builder
	for _, s := range tr.Spans {
		fmt.Fprintf(&b, "  %s parent=%s %s %s %q status=%s http=%d\n", s.SpanID, s.ParentSpanID, s.Service, s.Kind, s.Name, s.Status, s.HTTPStatus)
	}
	return b.String()
}

var orderPath = [][3]string{
	{"gateway", "server", "POST /orders"},
	{"gateway", "client", "send POST /orders"},
	{"orders", "server", "POST /orders"},
	{"orders", "internal", "price order"},
	{"orders", "client", "send products.apple.GET"},
	{"catalog", "server", "GET /products/{id}"},
}

// TestTraceNests: one request through the gateway, orders and catalog is
// one trace, whose spans nest in that order, each inside its parent's
// time, named after the process that made it, and found by request id.
func TestTraceNests(t *testing.T) {
	s := startShop(t)
	// What metro tap would see of the catalog call on the wire.
	wire, err := s.nc.SubscribeSync("products.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if code := s.do(t, "POST", "/orders", "apple", "nest-1"); code != http.StatusCreated {
		t.Fatalf("POST /orders: %d", code)
	}
	tr := s.waitTrace(t, "nest-1", len(orderPath))
	spans := chain(t, tr, orderPath)
	for _, sp := range spans {
		if sp.Status == "error" {
			t.Errorf("span %q is marked as an error: %s", sp.Name, sp.Error)
		}
	}
	if spans[0].HTTPStatus != http.StatusCreated || spans[0].RequestID != "nest-1" || spans[0].Route != "/orders" {
		t.Errorf("gateway span = %+v, want status 201, request id nest-1, route /orders", spans[0])
	}
	m, err := wire.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	traceID, spanID, parentID := tracing.MessageIDs(m.Header.Get("Traceparent"), m.Header.Get("Tracestate"))
	if send := spans[4]; traceID != tr.TraceID || spanID != send.SpanID || parentID != send.ParentSpanID {
		t.Errorf("the catalog call's message says trace %s span %s parent %s; want %s %s %s",
			traceID, spanID, parentID, tr.TraceID, send.SpanID, send.ParentSpanID)
	}
	if byID, ok := s.buf.Get(tr.TraceID); !ok || len(byID.Spans) != len(tr.Spans) {
		t.Errorf("trace by its trace id: %d spans, %v; by request id %d", len(byID.Spans), ok, len(tr.Spans))
	}
}

// TestTraceMarksErrors: a worker's 500 marks its span and every span on
// the path to it; so does a timeout.
func TestTraceMarksErrors(t *testing.T) {
	s := startShop(t)
	t.Run("500 from a worker", func(t *testing.T) {
		if code := s.do(t, "POST", "/orders", "boom", "boom-1"); code != http.StatusInternalServerError {
			t.Fatalf("POST /orders: %d", code)
		}
		want := append([][3]string(nil), orderPath...)
		want[4][2] = "send products.boom.GET"
		spans := chain(t, s.waitTrace(t, "boom-1", len(want)), want)
		for _, sp := range spans {
			if sp.Kind == "internal" {
				continue // the handler's own span: it set no status
			}
			if sp.Status != "error" || sp.HTTPStatus != http.StatusInternalServerError {
				t.Errorf("span %s %q: status %s, http %d; want error, 500", sp.Service, sp.Name, sp.Status, sp.HTTPStatus)
			}
		}
	})
	t.Run("timeout", func(t *testing.T) {
		if code := s.do(t, "GET", "/products/slow", "", "slow-1"); code != http.StatusGatewayTimeout {
			t.Fatalf("GET /products/slow: %d", code)
		}
		spans := chain(t, s.waitTrace(t, "slow-1", 3), [][3]string{
			{"gateway", "server", "GET /products/{id}"},
			{"gateway", "client", "send GET /products/{id}"},
			{"catalog", "server", "GET /products/{id}"},
		}, true)
		for _, sp := range spans {
			if sp.Status != "error" || sp.HTTPStatus != http.StatusGatewayTimeout {
				t.Errorf("span %s %q: status %s, http %d; want error, 504", sp.Service, sp.Name, sp.Status, sp.HTTPStatus)
			}
		}
	})
}

// TestTraceContinuesClientTrace: a client's traceparent makes the
// gateway's span a child of the client's, in the client's trace.
func TestTraceContinuesClientTrace(t *testing.T) {
	s := startShop(t)
	const traceID, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.url+"/products/apple", nil)
	req.Header.Set("Traceparent", "00-"+traceID+"-"+parent+"-01")
	resp, _ := metrotest.Do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	tr := s.waitTrace(t, traceID, 3)
	if tr.TraceID != traceID {
		t.Fatalf("trace id %s, want %s", tr.TraceID, traceID)
	}
	chain(t, tr, [][3]string{
		{"gateway", "server", "GET /products/{id}"},
		{"gateway", "client", "send GET /products/{id}"},
		{"catalog", "server", "GET /products/{id}"},
	})
	for _, sp := range tr.Spans {
		if sp.Kind == "server" && sp.Service == "gateway" && sp.ParentSpanID != parent {
			t.Errorf("gateway span's parent = %s, want the client's %s", sp.ParentSpanID, parent)
		}
	}
}

func tracerOf(ctx context.Context) interface {
	Start(context.Context, string, ...oteltrace.SpanStartOption) (context.Context, oteltrace.Span)
} {
	return oteltrace.SpanFromContext(ctx).TracerProvider().Tracer("shop")
}
