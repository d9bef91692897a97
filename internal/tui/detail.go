package tui

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/lipgloss"

	"github.com/metropolis-dev/metro/internal/tap"
)

// hexPreview is how much of a binary body the detail view dumps.
const hexPreview = 256

// renderDetail is the scrollable text of one exchange: what it was, then
// each side's headers and body.
func renderDetail(ex *tap.Exchange, width int, loc *time.Location) string {
	var b strings.Builder
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s %s\n", dimStyle.Render(fmt.Sprintf("%-11s", k)), v)
		}
	}
	kv("time", ex.Time.In(loc).Format("2006-01-02 15:04:05.000"))
	kv("subject", ex.Subject)
	kv("reply to", ex.Reply)
	kv("request id", ex.RequestID)
	kv("outcome", ex.Outcome.String())
	if ex.Status != 0 {
		kv("status", fmt.Sprint(ex.Status))
	}
	switch ex.Outcome {
	case tap.Published, tap.Lost:
	case tap.Pending:
		if !ex.Deadline.IsZero() {
			kv("waits until", ex.Deadline.In(loc).Format("15:04:05.000"))
		}
	default:
		kv("latency", formatDuration(ex.Latency))
	}
	if st := ex.Streamed(); st != "" {
		kv("streamed", st)
		if ex.Outcome == tap.OK {
			kv("first part", formatDuration(ex.FirstPart))
			kv("end", formatDuration(ex.Latency))
		}
		kv("broken", ex.StreamError)
	}
	kv("worker", ex.Worker)
	kv("error", ex.Error)

	section(&b, "Request")
	renderMessage(&b, ex.Request, width)
	if ex.Outcome == tap.OK || ex.Outcome == tap.NoResponders {
		section(&b, "Reply")
		renderMessage(&b, ex.Response, width)
	}
	return strings.TrimRight(b.String(), "\n")
}

func section(b *strings.Builder, name string) {
	b.WriteByte('\n')
	b.WriteString(sectionStyle.Render("── " + name + " ──"))
	b.WriteByte('\n')
}

func renderMessage(b *strings.Builder, msg tap.Message, width int) {
	for _, k := range slices.Sorted(maps.Keys(msg.Header)) {
		for _, v := range msg.Header[k] {
			fmt.Fprintf(b, "%s %s\n", jsonKey.Render(k+":"), v)
		}
	}
	if len(msg.Header) == 0 {
		b.WriteString(dimStyle.Render("(no headers)") + "\n")
	}
	b.WriteByte('\n')
	if msg.Size == 0 {
		b.WriteString(dimStyle.Render("(empty body)") + "\n")
		return
	}
	note := fmt.Sprintf("%d bytes", msg.Size)
	if msg.Streamed() {
		note += fmt.Sprintf(" in %d parts", msg.Parts)
	}
	if msg.Truncated() {
		note += fmt.Sprintf(", first %d shown", len(msg.Body))
	}
	switch {
	case isBinary(msg.Body):
		n := min(len(msg.Body), hexPreview)
		b.WriteString(dimStyle.Render(fmt.Sprintf("binary, %d bytes; first %d:", msg.Size, n)) + "\n")
		b.WriteString(hex.Dump(msg.Body[:n]))
		return
	case !msg.Truncated() && json.Valid(msg.Body):
		var out bytes.Buffer
		if json.Indent(&out, msg.Body, "", "  ") == nil {
			b.WriteString(dimStyle.Render("JSON, "+note) + "\n")
			b.WriteString(colorJSON(out.String()))
			b.WriteByte('\n')
			return
		}
	}
	b.WriteString(dimStyle.Render(note) + "\n")
	b.WriteString(lipgloss.NewStyle().Width(max(width, 1)).Render(string(msg.Body)))
	b.WriteByte('\n')
}

// isBinary: not UTF-8, or control bytes other than white space.
func isBinary(body []byte) bool {
	// A body cut at MaxBody may end inside a rune; that is no reason to
	// call it binary.
	trimmed := body
	for i := 0; i < utf8.UTFMax-1 && len(trimmed) > 0 && !utf8.Valid(trimmed); i++ {
		trimmed = trimmed[:len(trimmed)-1]
	}
	if !utf8.Valid(trimmed) {
		return true
	}
	for _, c := range trimmed {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

// colorJSON colours indented, valid JSON: keys, strings, numbers and
// literals each their own style.
func colorJSON(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(s))
			k := j
			for k < len(s) && s[k] == ' ' {
				k++
			}
			if k < len(s) && s[k] == ':' {
				b.WriteString(jsonKey.Render(s[i:j]))
			} else {
				b.WriteString(jsonString.Render(s[i:j]))
			}
			i = j
		case c == '-' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(s) && strings.IndexByte("0123456789.eE+-", s[j]) >= 0 {
				j++
			}
			b.WriteString(jsonNumber.Render(s[i:j]))
			i = j
		case c == 't' || c == 'f' || c == 'n':
			j := i
			for j < len(s) && s[j] >= 'a' && s[j] <= 'z' {
				j++
			}
			b.WriteString(jsonLit.Render(s[i:j]))
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}
