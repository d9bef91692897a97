package tap

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Record is the NDJSON form of an exchange: one JSON object per line.
type Record struct {
	Time         time.Time `json:"time"`
	Subject      string    `json:"subject"`
	Method       string    `json:"method,omitempty"`
	Path         string    `json:"path,omitempty"`
	Query        string    `json:"query,omitempty"`
	Status       int       `json:"status,omitempty"`
	LatencyMS    float64   `json:"latency_ms"`
	RequestBytes int       `json:"request_bytes"`
	ReplyBytes   int       `json:"reply_bytes"`
	RequestID    string    `json:"request_id,omitempty"`
	Worker       string    `json:"worker,omitempty"`
	Outcome      string    `json:"outcome"`
	Error        string    `json:"error,omitempty"`
	TraceID      string    `json:"trace_id,omitempty"`
	SpanID       string    `json:"span_id,omitempty"`
	ParentSpanID string    `json:"parent_span_id,omitempty"`

	// For an exchange whose bodies streamed (PROTOCOL.md section 9):
	// which did ("request", "reply" or "both"), the messages each came in,
	// the time to the reply's first message and to the end of the last
	// stream (latency_ms is that too), and whether a body broke.
	Stream       string   `json:"stream,omitempty"`
	RequestParts int      `json:"request_parts,omitempty"`
	ReplyParts   int      `json:"reply_parts,omitempty"`
	FirstPartMS  *float64 `json:"first_part_ms,omitempty"`
	EndMS        *float64 `json:"end_ms,omitempty"`
	Broken       bool     `json:"broken,omitempty"`
	StreamError  string   `json:"stream_error,omitempty"`
}

// NewRecord returns the NDJSON record of ex.
func NewRecord(ex Exchange) Record {
	traceID, spanID, parentID := ex.TraceIDs()
	r := Record{
		Time:         ex.Time,
		Subject:      ex.Subject,
		Method:       ex.Method,
		Path:         ex.Path,
		Query:        ex.Query,
		Status:       ex.Status,
		LatencyMS:    ms(ex.Latency),
		RequestBytes: ex.Request.Size,
		ReplyBytes:   ex.Response.Size,
		RequestID:    ex.RequestID,
		Worker:       ex.Worker,
		Outcome:      ex.Outcome.String(),
		Error:        ex.Error,
		TraceID:      traceID,
		SpanID:       spanID,
		ParentSpanID: parentID,
		Stream:       ex.Streamed(),
		RequestParts: ex.Request.Parts,
		ReplyParts:   ex.Response.Parts,
		Broken:       ex.Broken(),
		StreamError:  ex.StreamError,
	}
	if r.Stream != "" && ex.Outcome == OK {
		first, end := ms(ex.FirstPart), r.LatencyMS
		r.FirstPartMS, r.EndMS = &first, &end
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// WriteNDJSON runs in until ctx ends or count exchanges (0: no limit) are
// written, writing one Record per line to w.
func WriteNDJSON(ctx context.Context, in *Intake, w io.Writer, count int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n := 0
	var werr error
	emit := func(ex Exchange) {
		if ex.Outcome == Pending || werr != nil || count > 0 && n >= count {
			return // a line is written when the exchange is over
		}
		werr = enc.Encode(NewRecord(ex))
		n++
		if werr == nil && count > 0 && n >= count {
			werr = bw.Flush()
			cancel()
		}
		if werr != nil {
			cancel()
		}
	}
	// Lines are flushed every intake sweep rather than one by one: a reader
	// of the pipe sees each exchange within a tenth of a second, and a
	// flood of them costs one write per sweep, not one per line.
	flush := func(int, uint64) {
		if werr == nil && bw.Buffered() > 0 {
			if werr = bw.Flush(); werr != nil {
				cancel()
			}
		}
	}
	if err := in.Run(ctx, emit, flush); err != nil {
		return err
	}
	if werr == nil {
		werr = bw.Flush()
	}
	if werr != nil {
		return fmt.Errorf("writing exchanges: %w", werr)
	}
	return nil
}
