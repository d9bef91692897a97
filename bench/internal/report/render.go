package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Render writes res as the table bench/run prints: one row per scenario,
// then the ceiling, the goals and a warning when the machine was busy.
func Render(w io.Writer, res Result) error {
	var b strings.Builder
	if s := runLine(res.Run); s != "" {
		b.WriteString(s + "\n\n")
	}
	if len(res.Scenarios) > 0 {
		if err := renderRates(&b, res); err != nil {
			return err
		}
	}
	if res.Transfer != nil {
		if len(res.Scenarios) > 0 {
			b.WriteString("\n")
		}
		if err := renderTransfer(&b, *res.Transfer); err != nil {
			return err
		}
	}
	for _, g := range res.Goals {
		op, verdict := ">=", "met"
		if g.AtMost {
			op = "<="
		}
		if !g.Met {
			verdict = "NOT met"
		}
		value := fmt.Sprintf("%.2fx", g.Value)
		if g.OfMedians != nil {
			value = fmt.Sprintf("%.2fx per round (%.2fx of medians)", g.Value, *g.OfMedians)
		}
		fmt.Fprintf(&b, "goal: %s %s (target %s %gx): %s\n", g.What, value, op, g.Target, verdict)
	}
	for _, sr := range res.Scenarios {
		if sr.Errors > 0 {
			fmt.Fprintf(&b, "warning: %s had %d errors (non-2xx, socket or NATS): its figures are not comparable\n", sr.ID, sr.Errors)
		}
	}
	if res.Transfer != nil {
		for _, ts := range res.Transfer.Servers {
			if ts.Errors > 0 {
				fmt.Fprintf(&b, "warning: (x) through %s had %d failed transfers (first: %s): its figures are not comparable\n", ts.ID, ts.Errors, ts.FirstError)
			}
		}
	}
	if res.OtherLoadCPUs != nil && *res.OtherLoadCPUs >= 0.1 {
		fmt.Fprintf(&b, "warning: other processes kept %.2f CPUs busy during the samples (median): figures are low\n", *res.OtherLoadCPUs)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// renderRates writes the table of the request-rate scenarios, their cost
// lines and the ceiling.
func renderRates(b *strings.Builder, res Result) error {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tscenario\treq/s\tp50\tp99\tx nginx\tx revproxy\tx (g)\tx (d)\tp99 x (d)\tof ceiling\tCPU us/req")
	for _, sr := range res.Scenarios {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			sr.ID, sr.Label, sr.RPS, msString(sr.P50Ms), msString(sr.P99Ms),
			opt(sr.XNginx, "%.2f"), opt(sr.XRevproxy, "%.2f"), opt(sr.XRevproxyDefault, "%.2f"),
			opt(sr.XMetro, "%.2f"), opt(sr.P99XMetro, "%.2f"), opt(sr.OfCeiling, "%.2f"), cpuString(sr))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("rendering the table: %w", err)
	}
	b.WriteString("\n")
	for _, sr := range res.Scenarios {
		if sr.XMetro == nil {
			continue
		}
		// The cost line reads the per-round ratio when there is one: a
		// neighbour's burst moves it least.
		x := *sr.XMetro
		if sr.XMetroPaired != nil {
			x = *sr.XMetroPaired
		}
		fmt.Fprintf(b, "cost vs metro (d): %s %s: req/s %.2fx, p99 %sx\n",
			sr.ID, strings.TrimPrefix(sr.Label, "(d) "), x, opt(sr.P99XMetro, "%.2f"))
	}
	if res.CeilingRPS != nil {
		fmt.Fprintf(b, "ceiling 1/(1/a + 1/f): %.0f req/s\n", *res.CeilingRPS)
	}
	return nil
}

func runLine(run map[string]string) string {
	var parts []string
	if v := run["rounds"]; v != "" {
		parts = append(parts, "rounds "+v)
	}
	if v := run["duration"]; v != "" {
		parts = append(parts, v+" samples")
	}
	if c, t := run["connections"], run["wrk_threads"]; c != "" {
		s := "connections " + c
		if t != "" {
			s += ", wrk threads " + t
		}
		parts = append(parts, s)
	}
	if v := run["cpus"]; v != "" {
		s := "CPUs " + v
		if m := run["cpu_model"]; m != "" {
			s += " (" + m + ")"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return ""
	}
	return "metro bench: " + strings.Join(parts, ", ") + "; medians"
}

func msString(v float64) string {
	if v < 1 {
		return strconv.FormatFloat(v*1000, 'f', 0, 64) + "us"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "ms"
}

func opt(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

func cpuString(sr ScenarioResult) string {
	var parts []string
	for _, r := range sr.Roles() {
		parts = append(parts, fmt.Sprintf("%s %.1f", r, sr.CPUUsPerReq[r]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// renderTransfer writes the table of the large-transfer scenario (x).
func renderTransfer(b *strings.Builder, t Transfer) error {
	fmt.Fprintf(b, "large transfer (x): %s each way, %d round(s); TTFB of a streamed reply; medians\n\n", sizeString(t.Bytes), t.Rounds)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tthrough\tdown MB/s\tup MB/s\tx nginx down\tx nginx up\tx revproxy down\tx revproxy up\tTTFB\tTTFB p90\tCPU ms/100MiB down\tCPU ms/100MiB up")
	for _, ts := range t.Servers {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			ts.ID, ts.Label, ts.DownloadMBps, ts.UploadMBps,
			opt(ts.DownloadXNginx, "%.2f"), opt(ts.UploadXNginx, "%.2f"),
			opt(ts.DownloadXRevproxy, "%.2f"), opt(ts.UploadXRevproxy, "%.2f"),
			msString(ts.TTFBMs), msString(ts.TTFBP90Ms),
			rolesString(ts.CPUMsPer100MiB["download"]), rolesString(ts.CPUMsPer100MiB["upload"]))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("rendering the transfer table: %w", err)
	}
	b.WriteString("\n")
	return nil
}

func sizeString(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// rolesString lists the roles of m, metro's processes first as in Roles.
func rolesString(m map[string]float64) string {
	if len(m) == 0 {
		return "-"
	}
	sr := ScenarioResult{CPUUsPerReq: m}
	var parts []string
	for _, r := range sr.Roles() {
		parts = append(parts, fmt.Sprintf("%s %.0f", r, m[r]))
	}
	return strings.Join(parts, ", ")
}
