package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/metropolis-dev/metro/internal/tap"
	"github.com/metropolis-dev/metro/internal/tracing"
)

// TraceFunc looks up a trace by id in the running metro dev.
type TraceFunc func(ctx context.Context, id string) (tracing.Trace, error)

// traceTimeout bounds one lookup.
const traceTimeout = 5 * time.Second

// traceState is the waterfall open over an exchange.
type traceState struct {
	seq     uint64 // the exchange's
	traceID string
	spanID  string // the span that sent the exchange's request
	tr      *tracing.Trace
	err     error
}

// traceMsg is the answer to a lookup.
type traceMsg struct {
	seq uint64
	tr  tracing.Trace
	err error
}

// openTrace shows the trace of ex, fetched in the background.
func (m *Model) openTrace(ex tap.Exchange) tea.Cmd {
	traceID, spanID, _ := ex.TraceIDs()
	m.detail = &ex
	m.trace = &traceState{seq: ex.Seq, traceID: traceID, spanID: spanID}
	m.resizeDetail()
	m.vp.GotoTop()
	switch {
	case traceID == "":
		m.trace.err = fmt.Errorf("this request carries no traceparent")
		m.resizeDetail()
		return nil
	case m.cfg.Traces == nil:
		m.trace.err = fmt.Errorf("no running metro dev keeps traces here")
		m.resizeDetail()
		return nil
	}
	get, seq := m.cfg.Traces, ex.Seq
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), traceTimeout)
		defer cancel()
		tr, err := get(ctx, traceID)
		return traceMsg{seq: seq, tr: tr, err: err}
	}
}

// gotTrace shows a lookup's answer if its waterfall is still open.
func (m *Model) gotTrace(msg traceMsg) {
	if m.trace == nil || m.trace.seq != msg.seq {
		return
	}
	if msg.err != nil {
		m.trace.err = msg.err
	} else {
		m.trace.tr = &msg.tr
	}
	m.resizeDetail()
}

// renderTrace is the waterfall: one line per span, nested, with its
// offset, duration and a bar; the exchange's own span (the one that sent
// its request) and the worker's span under it are marked with ">".
func renderTrace(ts *traceState, width int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", dimStyle.Render(fmt.Sprintf("%-11s", "trace")), ts.traceID)
	switch {
	case ts.err != nil:
		b.WriteString("\n" + errorStyle.Render(ts.err.Error()) + "\n")
		return b.String()
	case ts.tr == nil:
		b.WriteString("\n" + dimStyle.Render("loading…") + "\n")
		return b.String()
	}
	nodes := tracing.Tree(*ts.tr)
	if len(nodes) == 0 {
		b.WriteString("\n" + dimStyle.Render("no spans yet") + "\n")
		return b.String()
	}
	first, last := nodes[0].Start, nodes[0].End()
	svcW, nameW := 0, 0
	for _, n := range nodes {
		if n.Start.Before(first) {
			first = n.Start
		}
		if n.End().After(last) {
			last = n.End()
		}
		svcW = max(svcW, len(n.Service))
		nameW = max(nameW, 2*n.Depth+len(n.Name))
	}
	total := last.Sub(first)
	nameW = min(nameW, max(width/3, 12))
	barW := max(width-(2+svcW+1+nameW+1+8+1+8+1+2+2), 8) // room for " !"
	b.WriteByte('\n')
	for _, n := range nodes {
		mark := "  "
		hl := n.SpanID == ts.spanID || n.ParentSpanID == ts.spanID && n.Kind == "server"
		if hl {
			mark = "> "
		}
		name := ansi.Truncate(strings.Repeat("  ", n.Depth)+n.Name, nameW, "…")
		line := fmt.Sprintf("%s%-*s %-*s %8s %8s |%s|", mark, svcW, n.Service, nameW, name,
			formatDuration(n.Offset), formatDuration(n.End().Sub(n.Start)), bar(n.Start.Sub(first), n.End().Sub(n.Start), total, barW))
		switch {
		case hl:
			line = selectedStyle.Render(line)
		case n.Status == "error":
			line = errorStyle.Render(line)
		}
		b.WriteString(line)
		if n.Status == "error" {
			b.WriteString(errorStyle.Render(" !"))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// bar places a span in the trace's time, w cells wide.
func bar(off, d, total time.Duration, w int) string {
	if total <= 0 {
		return strings.Repeat("=", w)
	}
	from := int(int64(off) * int64(w) / int64(total))
	to := int((int64(off+d)*int64(w) + int64(total) - 1) / int64(total))
	from = min(max(from, 0), w-1)
	to = min(max(to, from+1), w)
	return strings.Repeat(" ", from) + strings.Repeat("=", to-from) + strings.Repeat(" ", w-to)
}
