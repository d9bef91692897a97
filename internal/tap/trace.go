package tap

import (
	"net/textproto"

	"github.com/metropolis-dev/metro/internal/tracing"
)

// TraceIDs returns the trace the request belongs to, the span that sent
// it and that span's parent, from its traceparent and tracestate headers
// (see tracing.MessageIDs); "" for what they do not say.
func (e *Exchange) TraceIDs() (traceID, spanID, parentSpanID string) {
	return tracing.MessageIDs(header(e.Request.Header, "Traceparent"), header(e.Request.Header, "Tracestate"))
}

// header reads a header whose name the sender may not have canonicalised.
func header(h map[string][]string, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if len(v) > 0 && textproto.CanonicalMIMEHeaderKey(k) == name {
			return v[0]
		}
	}
	return ""
}
