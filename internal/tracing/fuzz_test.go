package tracing

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzExport: whatever a process posts, the collector answers 200 (a
// valid export) or 400, never panics, and keeps what it stores bounded.
func FuzzExport(f *testing.F) {
	valid, _ := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
			TraceId: bytes.Repeat([]byte{1}, 16), SpanId: bytes.Repeat([]byte{2}, 8), Name: "x",
			StartTimeUnixNano: 10, EndTimeUnixNano: 5,
		}}}},
	}}})
	f.Add(valid, false)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102","name":"y"}]}]}]}`), true)
	f.Add([]byte{0xff, 0x01}, false)
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		buf := NewBuffer(4, 4)
		c := &Collector{buf: buf}
		req := httptest.NewRequest("POST", TracesPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		if isJSON {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		c.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
			t.Fatalf("status %d", rec.Code)
		}
		if buf.Len() > 4 {
			t.Fatalf("%d traces kept, limit 4", buf.Len())
		}
	})
}
