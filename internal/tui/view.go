package tui

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/metropolis-dev/metro/internal/tap"
)

// chromeLines are the lines around the table: title, stats, column
// heads, filter line and one line of help.
const chromeLines = 5

// column is one column of the table; the path column takes the width the
// others leave.
type column struct {
	title string
	width int
	right bool
	cell  func(m *Model, ex *tap.Exchange) string
}

var (
	colTime = column{"TIME", 12, false, func(m *Model, ex *tap.Exchange) string {
		return ex.Time.In(m.cfg.Location).Format("15:04:05.000")
	}}
	colMethod  = column{"METHOD", 7, false, func(_ *Model, ex *tap.Exchange) string { return ex.Method }}
	colPath    = column{"PATH", 0, false, func(_ *Model, ex *tap.Exchange) string { return pathCell(ex) }}
	colStatus  = column{"STATUS", 7, false, func(_ *Model, ex *tap.Exchange) string { return statusText(ex) }}
	colLatency = column{"LATENCY", 8, true, func(m *Model, ex *tap.Exchange) string {
		switch ex.Outcome {
		case tap.Published, tap.Lost:
			return "-"
		case tap.Pending:
			// Waiting so far, as of the last tick: it grows while it waits.
			return formatDuration(m.now.Sub(ex.Time))
		}
		return formatDuration(ex.Latency)
	}}
	colReq   = column{"REQ", 7, true, func(_ *Model, ex *tap.Exchange) string { return formatBytes(ex.Request.Size) }}
	colReply = column{"REPLY", 7, true, func(_ *Model, ex *tap.Exchange) string {
		if ex.Outcome != tap.OK {
			return "-"
		}
		return formatBytes(ex.Response.Size)
	}}
	colWorker = column{"WORKER", 12, false, func(_ *Model, ex *tap.Exchange) string { return ex.Worker }}

	// Once streams are seen: a streamed body's size with its parts
	// ("5.0M/81p") and a streamed exchange's time to its first part and
	// to its end ("1.2ms→340ms").
	colLatencyStreams = column{"LATENCY", 13, true, func(m *Model, ex *tap.Exchange) string {
		if ex.Outcome == tap.OK && ex.Streamed() != "" {
			return formatDuration(ex.FirstPart) + "→" + formatDuration(ex.Latency)
		}
		return colLatency.cell(m, ex)
	}}
	colReqStreams   = column{"REQ", 11, true, func(_ *Model, ex *tap.Exchange) string { return sizeCell(ex.Request) }}
	colReplyStreams = column{"REPLY", 11, true, func(_ *Model, ex *tap.Exchange) string {
		if ex.Outcome != tap.OK {
			return "-"
		}
		return sizeCell(ex.Response)
	}}
)

func sizeCell(msg tap.Message) string {
	if !msg.Streamed() {
		return formatBytes(msg.Size)
	}
	return formatBytes(msg.Size) + "/" + formatCount(msg.Parts) + "p"
}

// withStreams swaps in the columns that show streams.
func withStreams(cols []column) []column {
	out := make([]column, len(cols))
	for i, c := range cols {
		switch c.title {
		case "LATENCY":
			c = colLatencyStreams
		case "REQ":
			c = colReqStreams
		case "REPLY":
			c = colReplyStreams
		}
		out[i] = c
	}
	return out
}

// minPath is the narrowest the path column gets before other columns go.
const minPath = 16

// columns are those that fit in width, least useful dropped first.
func columns(width int, streams bool) []column {
	sets := [][]column{
		{colTime, colMethod, colPath, colStatus, colLatency, colReq, colReply, colWorker},
		{colTime, colMethod, colPath, colStatus, colLatency, colReq, colReply},
		{colTime, colMethod, colPath, colStatus, colLatency},
		{colMethod, colPath, colStatus, colLatency},
	}
	if streams {
		// Sizes with their parts tell more than the time of day.
		sets = slices.Insert(sets, 2, []column{colMethod, colPath, colStatus, colLatency, colReq, colReply})
	}
	for _, cols := range sets {
		if streams {
			cols = withStreams(cols)
		}
		if pathWidth(width, cols) >= minPath {
			return cols
		}
	}
	if streams {
		return withStreams(sets[len(sets)-1])
	}
	return sets[len(sets)-1]
}

func pathWidth(width int, cols []column) int {
	w := width - 2 // the cursor gutter
	for _, c := range cols {
		if c.width > 0 {
			w -= c.width + 1
		}
	}
	return max(w, 4)
}

func pathCell(ex *tap.Exchange) string {
	p := ex.Target()
	if ex.Query != "" {
		p += "?" + ex.Query
	}
	return p
}

func statusText(ex *tap.Exchange) string {
	switch ex.Outcome {
	case tap.Timeout:
		return "timeout"
	case tap.NoResponders:
		return "no-resp"
	case tap.Published:
		return "pub"
	case tap.Pending:
		return "…"
	case tap.Lost:
		return "lost"
	}
	if ex.Broken() {
		return strconv.Itoa(ex.Status) + " ✗"
	}
	return strconv.Itoa(ex.Status)
}

func statusStyle(ex *tap.Exchange) lipgloss.Style {
	switch {
	case ex.Outcome == tap.Pending || ex.Outcome == tap.Lost:
		return dimStyle
	case ex.Outcome == tap.Timeout || ex.Outcome == tap.NoResponders || ex.Status >= 500 || ex.Broken():
		return status5xx
	case ex.Status >= 400:
		return status4xx
	case ex.Status >= 300:
		return status3xx
	case ex.Status >= 200:
		return status2xx
	}
	return dimStyle
}

// fit pads or cuts s to exactly w cells.
func fit(s string, w int, right bool) string {
	if lipgloss.Width(s) > w {
		return ansi.Truncate(s, w, "…")
	}
	pad := strings.Repeat(" ", w-lipgloss.Width(s))
	if right {
		return pad + s
	}
	return s + pad
}

// View renders the model. It reads the model only.
func (m Model) View() string {
	if m.detail != nil {
		return m.detailView()
	}
	var b strings.Builder
	line := func(s string) {
		b.WriteString(ansi.Truncate(s, m.width, "…"))
		b.WriteByte('\n')
	}
	line(titleStyle.Render("metro tap") + "  " + m.cfg.Title)
	line(m.statsLine())

	cols := columns(m.width, m.streams)
	pw := pathWidth(m.width, cols)
	head := make([]string, 0, len(cols))
	for _, c := range cols {
		w := c.width
		if w == 0 {
			w = pw
		}
		head = append(head, fit(c.title, w, c.right))
	}
	line(headerStyle.Render("  " + strings.Join(head, " ")))

	h := m.tableRows()
	end := min(m.top+h, len(m.visible))
	for i := m.top; i < end; i++ {
		line(m.row(m.rows.at(m.visible[i]), cols, pw, i == m.cursor))
	}
	for i := end - m.top; i < h; i++ {
		if i == 0 && len(m.visible) == 0 {
			if m.filter != "" {
				line(dimStyle.Render("  no exchange matches the filter"))
			} else {
				line(dimStyle.Render("  waiting for requests…"))
			}
			continue
		}
		b.WriteByte('\n')
	}

	line(m.footer())
	b.WriteString(m.help.View(m.keys))
	return b.String()
}

func (m *Model) row(ex *tap.Exchange, cols []column, pw int, selected bool) string {
	cells := make([]string, 0, len(cols))
	for _, c := range cols {
		w := c.width
		if w == 0 {
			w = pw
		}
		s := fit(c.cell(m, ex), w, c.right)
		if !selected && c.title == "STATUS" {
			s = statusStyle(ex).Render(s)
		}
		cells = append(cells, s)
	}
	r := strings.Join(cells, " ")
	if selected {
		return selectedStyle.Render("> " + r)
	}
	return "  " + r
}

func (m *Model) rate() float64 {
	if len(m.samples) < 2 {
		return 0
	}
	first, last := m.samples[0], m.samples[len(m.samples)-1]
	d := last.at.Sub(first.at).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(last.total-first.total) / d
}

// statsLine is the totals, as many as fit: PAUSED and drops first, so a
// narrow terminal still shows them.
func (m *Model) statsLine() string {
	st := m.stats
	errRate := 0.0
	if st.Total > 0 {
		errRate = 100 * float64(st.Failed) / float64(st.Total)
	}
	errs := fmt.Sprintf("errors %.1f%%", errRate)
	if st.Failed > 0 {
		errs = errorStyle.Render(errs)
	}
	var parts []string
	if m.paused {
		parts = append(parts, pausedStyle.Render("PAUSED"))
	}
	dropped := fmt.Sprintf("dropped %d", st.Dropped)
	total := fmt.Sprintf("%d exchanges", st.Total)
	if st.Total == 1 {
		total = "1 exchange"
	}
	parts = append(parts, total, fmt.Sprintf("%.1f/s", m.rate()), errs)
	if st.Dropped > 0 {
		// Losing rows is worth more room than the percentiles.
		parts = append(parts, errorStyle.Render(dropped))
	}
	parts = append(parts, "p50 "+formatDuration(st.P50), "p99 "+formatDuration(st.P99), fmt.Sprintf("in flight %d", st.InFlight))
	if st.Dropped == 0 {
		parts = append(parts, dropped)
	}
	line, w := "", 0
	for i, p := range parts {
		pw := lipgloss.Width(p)
		if i > 0 && w+2+pw > m.width {
			break
		}
		if i > 0 {
			line += "  "
			w += 2
		}
		line += p
		w += pw
	}
	return line
}

func (m *Model) footer() string {
	if m.filtering {
		return m.input.View()
	}
	shown := fmt.Sprintf("%d rows", len(m.visible))
	if m.filter != "" {
		return fmt.Sprintf("filter: %s  (%d of %d rows)", m.filter, len(m.visible), m.rows.n)
	}
	if !m.follow {
		shown += "  (scrolled; G follows)"
	}
	return dimStyle.Render(shown)
}

func (m Model) detailView() string {
	ex := m.detail
	title := titleStyle.Render(ex.Method+" "+pathCell(ex)) + "  " + statusStyle(ex).Render(statusText(ex))
	var b strings.Builder
	b.WriteString(ansi.Truncate(title, m.width, "…"))
	b.WriteByte('\n')
	b.WriteString(m.vp.View())
	b.WriteByte('\n')
	pct := fmt.Sprintf("%3.0f%%", m.vp.ScrollPercent()*100)
	b.WriteString(dimStyle.Render(ansi.Truncate("esc back • ↑/↓ pgup/pgdn scroll • q quit  "+pct, m.width, "…")))
	return b.String()
}

// formatDuration prints a latency in at most about six cells.
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < 100*time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

func formatBytes(n int) string {
	switch {
	case n < 1024:
		return strconv.Itoa(n) + "B"
	case n < 1<<20:
		return fmt.Sprintf("%.1fK", float64(n)/1024)
	case n < 1<<30:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
}

// formatCount prints a count in at most four cells.
func formatCount(n int) string {
	switch {
	case n < 1000:
		return strconv.Itoa(n)
	case n < 1_000_000:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n/1_000_000) + "M"
}
