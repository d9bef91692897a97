package tracing

import (
	"encoding/hex"
	"slices"
	"sync"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Trace is one request's spans, as `metro trace --json` writes it.
type Trace struct {
	TraceID string     `json:"trace_id"`
	Spans   []SpanData `json:"spans"`
}

// SpanData is one finished span.
type SpanData struct {
	SpanID       string    `json:"span_id"`
	ParentSpanID string    `json:"parent_span_id"`
	Name         string    `json:"name"`
	Service      string    `json:"service"`
	Start        time.Time `json:"start"`
	DurationMS   float64   `json:"duration_ms"`
	// Status is the span's status: "ok", "error" or "unset".
	Status string `json:"status"`
	// Kind is "server", "client", "internal", "producer" or "consumer".
	Kind       string `json:"kind,omitempty"`
	Route      string `json:"route,omitempty"`
	HTTPStatus int    `json:"http_status,omitempty"`
	Subject    string `json:"subject,omitempty"`
	RequestID  string `json:"request_id,omitempty"`
	Error      string `json:"error,omitempty"`
}

// End is when the span ended.
func (s SpanData) End() time.Time {
	return s.Start.Add(time.Duration(s.DurationMS * float64(time.Millisecond)))
}

// Limits of a Buffer.
const (
	DefaultMaxTraces     = 1000
	DefaultSpansPerTrace = 500
)

// Buffer keeps the most recent traces, at most maxTraces of them with at
// most spansPerTrace spans each, indexed by trace id and by request id.
// The oldest trace (by first span received) goes first.
type Buffer struct {
	maxTraces, maxSpans int

	mu     sync.Mutex
	traces map[string]*Trace
	order  []string          // trace ids, oldest first
	byRID  map[string]string // request id -> trace id
	rids   map[string][]string
}

// NewBuffer returns an empty buffer; limits <= 0 take the defaults.
func NewBuffer(maxTraces, spansPerTrace int) *Buffer {
	if maxTraces <= 0 {
		maxTraces = DefaultMaxTraces
	}
	if spansPerTrace <= 0 {
		spansPerTrace = DefaultSpansPerTrace
	}
	return &Buffer{
		maxTraces: maxTraces,
		maxSpans:  spansPerTrace,
		traces:    map[string]*Trace{},
		byRID:     map[string]string{},
		rids:      map[string][]string{},
	}
}

// Add stores spans, each under its trace id.
func (b *Buffer) Add(spans []SpanData, traceIDs []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, s := range spans {
		id := traceIDs[i]
		t := b.traces[id]
		if t == nil {
			if len(b.order) >= b.maxTraces {
				b.evict()
			}
			t = &Trace{TraceID: id}
			b.traces[id] = t
			b.order = append(b.order, id)
		}
		if len(t.Spans) >= b.maxSpans {
			continue
		}
		t.Spans = append(t.Spans, s)
		if s.RequestID != "" {
			if _, ok := b.byRID[s.RequestID]; !ok {
				b.byRID[s.RequestID] = id
				b.rids[id] = append(b.rids[id], s.RequestID)
			}
		}
	}
}

func (b *Buffer) evict() {
	id := b.order[0]
	b.order = b.order[1:]
	delete(b.traces, id)
	for _, rid := range b.rids[id] {
		if b.byRID[rid] == id {
			delete(b.byRID, rid)
		}
	}
	delete(b.rids, id)
}

// Get returns the trace whose trace id or request id is id, its spans
// ordered by start time.
func (b *Buffer) Get(id string) (Trace, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.traces[id]
	if t == nil {
		if tid, ok := b.byRID[id]; ok {
			t = b.traces[tid]
		}
	}
	if t == nil {
		return Trace{}, false
	}
	out := Trace{TraceID: t.TraceID, Spans: slices.Clone(t.Spans)}
	slices.SortStableFunc(out.Spans, func(a, b SpanData) int { return a.Start.Compare(b.Start) })
	return out, true
}

// Len is the number of traces held.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.order)
}

// fromOTLP flattens resource spans into SpanData with their trace ids.
func fromOTLP(rss []*tracepb.ResourceSpans) (spans []SpanData, traceIDs []string) {
	for _, rs := range rss {
		service := stringAttr(rs.GetResource().GetAttributes(), "service.name")
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				attrs := sp.GetAttributes()
				d := SpanData{
					SpanID:       hex.EncodeToString(sp.GetSpanId()),
					ParentSpanID: hex.EncodeToString(sp.GetParentSpanId()),
					Name:         sp.GetName(),
					Service:      service,
					Start:        time.Unix(0, int64(sp.GetStartTimeUnixNano())).UTC(),
					DurationMS:   float64(int64(sp.GetEndTimeUnixNano())-int64(sp.GetStartTimeUnixNano())) / 1e6,
					Kind:         kindName(sp.GetKind()),
					Route:        stringAttr(attrs, "http.route"),
					HTTPStatus:   int(intAttr(attrs, "http.response.status_code")),
					Subject:      stringAttr(attrs, "messaging.destination.name"),
					RequestID:    stringAttr(attrs, string(AttrRequestID)),
				}
				switch sp.GetStatus().GetCode() {
				case tracepb.Status_STATUS_CODE_ERROR:
					d.Status, d.Error = "error", sp.GetStatus().GetMessage()
				case tracepb.Status_STATUS_CODE_OK:
					d.Status = "ok"
				default:
					d.Status = "unset"
				}
				spans = append(spans, d)
				traceIDs = append(traceIDs, hex.EncodeToString(sp.GetTraceId()))
			}
		}
	}
	return spans, traceIDs
}

func kindName(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_SERVER:
		return "server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "client"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "consumer"
	}
	return "internal"
}

func stringAttr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

func intAttr(kvs []*commonpb.KeyValue, key string) int64 {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return kv.GetValue().GetIntValue()
		}
	}
	return 0
}
