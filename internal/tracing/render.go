package tracing

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// barWidth is the width of the timeline column in cells.
const barWidth = 32

// Node is a span in a trace's tree, in display order.
type Node struct {
	SpanData
	Depth int
	// Offset is the span's start after the trace's first span.
	Offset time.Duration
	// NATS is the time a message spent between a client span and this
	// server span under it (there and back), -1 when it is not such a pair.
	NATS time.Duration
}

// Tree orders a trace's spans depth first, children by start time; a
// span whose parent is not in the trace is a root.
func Tree(t Trace) []Node {
	if len(t.Spans) == 0 {
		return nil
	}
	byID := map[string]SpanData{}
	for _, s := range t.Spans {
		byID[s.SpanID] = s
	}
	children := map[string][]SpanData{}
	var roots []SpanData
	first := t.Spans[0].Start
	for _, s := range t.Spans {
		if s.Start.Before(first) {
			first = s.Start
		}
		if _, ok := byID[s.ParentSpanID]; ok && s.ParentSpanID != s.SpanID {
			children[s.ParentSpanID] = append(children[s.ParentSpanID], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(a, b SpanData) int { return a.Start.Compare(b.Start) }
	var out []Node
	var walk func(s SpanData, depth int)
	walk = func(s SpanData, depth int) {
		n := Node{SpanData: s, Depth: depth, Offset: s.Start.Sub(first), NATS: -1}
		if p, ok := byID[s.ParentSpanID]; ok && p.Kind == "client" && p.Subject != "" && s.Kind == "server" {
			n.NATS = max(s.Start.Sub(p.Start)+p.End().Sub(s.End()), 0)
		}
		out = append(out, n)
		kids := children[s.SpanID]
		slices.SortStableFunc(kids, byStart)
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	slices.SortStableFunc(roots, byStart)
	for _, r := range roots {
		walk(r, 0)
	}
	return out
}

// Render writes a trace as an indented tree with a timeline: per span its
// start offset, duration, service, name, HTTP status, the time spent in
// NATS before a worker's span, and errors marked.
func Render(w io.Writer, t Trace) error {
	nodes := Tree(t)
	if len(nodes) == 0 {
		_, err := fmt.Fprintf(w, "trace %s: no spans\n", t.TraceID)
		return err
	}
	first := nodes[0].Start
	last := nodes[0].End()
	rid := ""
	errs := 0
	for _, n := range nodes {
		if n.Start.Before(first) {
			first = n.Start
		}
		if n.End().After(last) {
			last = n.End()
		}
		if rid == "" {
			rid = n.RequestID
		}
		if n.Status == "error" {
			errs++
		}
	}
	total := last.Sub(first)
	var b strings.Builder
	fmt.Fprintf(&b, "trace %s", t.TraceID)
	if rid != "" {
		fmt.Fprintf(&b, "  request %s", rid)
	}
	fmt.Fprintf(&b, "  %s  %d spans", ms(total), len(nodes))
	if errs > 0 {
		fmt.Fprintf(&b, "  %d errors", errs)
	}
	b.WriteString("\n\n")
	svcW, nameW := len("SERVICE"), len("SPAN")
	for _, n := range nodes {
		svcW = max(svcW, len(n.Service))
		nameW = max(nameW, 2*n.Depth+len(n.Name))
	}
	fmt.Fprintf(&b, "%9s %10s  %-*s  %-*s  %6s  %-9s  %s\n", "START", "DURATION", svcW, "SERVICE", nameW, "SPAN", "STATUS", "NATS", "TIMELINE")
	for _, n := range nodes {
		status := ""
		if n.HTTPStatus > 0 {
			status = strconv.Itoa(n.HTTPStatus)
		}
		if n.Status == "error" {
			status += "!"
		}
		nats := ""
		if n.NATS >= 0 {
			nats = ms(n.NATS)
		}
		name := strings.Repeat("  ", n.Depth) + n.Name
		fmt.Fprintf(&b, "%9s %10s  %-*s  %-*s  %6s  %-9s  |%s|", ms(n.Offset), ms(n.End().Sub(n.Start)), svcW, n.Service, nameW, name, status, nats, bar(n.Start.Sub(first), n.End().Sub(n.Start), total))
		if n.Status == "error" && n.Error != "" {
			fmt.Fprintf(&b, "  error: %s", n.Error)
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// bar draws a span's place in the trace's time.
func bar(off, d, total time.Duration) string {
	if total <= 0 {
		return strings.Repeat("=", barWidth)
	}
	from := int(int64(off) * barWidth / int64(total))
	to := int((int64(off+d)*barWidth + int64(total) - 1) / int64(total))
	from = min(max(from, 0), barWidth-1)
	to = min(max(to, from+1), barWidth)
	return strings.Repeat(" ", from) + strings.Repeat("=", to-from) + strings.Repeat(" ", barWidth-to)
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}
