package tap

import "testing"

func TestRecordTraceIDs(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		name                  string
		header                map[string][]string
		trace, span, parentID string
	}{
		{"metro sender", map[string][]string{"Traceparent": {tp}, "Tracestate": {"metro=b7ad6b7169203331,other=x"}},
			"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "b7ad6b7169203331"},
		{"lower-case names", map[string][]string{"traceparent": {tp}, "tracestate": {"metro=b7ad6b7169203331"}},
			"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "b7ad6b7169203331"},
		{"client traceparent only", map[string][]string{"Traceparent": {tp}}, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", ""},
		{"none", nil, "", "", ""},
		{"malformed", map[string][]string{"Traceparent": {"00-xyz"}}, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRecord(Exchange{Request: Message{Header: tc.header}})
			if r.TraceID != tc.trace || r.SpanID != tc.span || r.ParentSpanID != tc.parentID {
				t.Errorf("ids = %q %q %q, want %q %q %q", r.TraceID, r.SpanID, r.ParentSpanID, tc.trace, tc.span, tc.parentID)
			}
		})
	}
}
