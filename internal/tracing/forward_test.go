package tracing

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// TestForward: a collector set up from the OTEL_* variables passes each
// export on to the backend they name, with their headers, and keeps it.
func TestForward(t *testing.T) {
	backend := NewBuffer(0, 0)
	var mu sync.Mutex
	var keys []string
	backendSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("X-Api-Key"))
		mu.Unlock()
		(&Collector{buf: backend}).Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(backendSrv.Close)
	env := map[string]string{EnvEndpoint: backendSrv.URL + "/", "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=s%20cret, other=1"}
	fwd, err := ForwardFromEnv(func(k string) string { return env[k] })
	if err != nil || fwd == nil {
		t.Fatalf("ForwardFromEnv: %v, %v", fwd, err)
	}
	if fwd.URL != backendSrv.URL+"/v1/traces" {
		t.Errorf("URL %s", fwd.URL)
	}
	var errs []error
	fwd.OnError = func(err error) { errs = append(errs, err) }
	local := NewBuffer(0, 0)
	col, err := StartCollector("127.0.0.1:0", local, fwd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = col.Close() })

	tp, err := NewProvider(t.Context(), Options{Service: "w", Getenv: func(string) string { return "" }, Also: []string{col.TracesEndpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	_, s := tp.Tracer("t").Start(t.Context(), "op", trace.WithSpanKind(trace.SpanKindServer))
	s.End()
	id := s.SpanContext().TraceID().String()
	if err := Shutdown(tp); err != nil { // flushes: the export is done when it returns
		t.Fatal(err)
	}
	for _, b := range []*Buffer{local, backend} {
		tr, ok := b.Get(id)
		if !ok || len(tr.Spans) != 1 || tr.Spans[0].Service != "w" {
			t.Errorf("trace %s: %v %+v", id, ok, tr)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 1 || keys[0] != "s cret" {
		t.Errorf("backend saw X-Api-Key %q, want [\"s cret\"]", keys)
	}
	if len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
}

func TestForwardFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		url  string
		bad  bool
	}{
		{"none", nil, "", false},
		{"traces endpoint as is", map[string]string{EnvTracesEndpoint: "https://c/x"}, "https://c/x", false},
		{"base endpoint", map[string]string{EnvEndpoint: "http://c:4318"}, "http://c:4318/v1/traces", false},
		{"not a URL", map[string]string{EnvEndpoint: "c:4318"}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ForwardFromEnv(func(k string) string { return tc.env[k] })
			if (err != nil) != tc.bad {
				t.Fatalf("err %v", err)
			}
			got := ""
			if f != nil {
				got = f.URL
			}
			if got != tc.url {
				t.Errorf("URL %q, want %q", got, tc.url)
			}
		})
	}
}
