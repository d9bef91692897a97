package scaffold

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Result says what Init or AddWorker wrote (or, for a dry run, would
// write) and what to run next.
type Result struct {
	DryRun   bool
	Created  []string // slash paths relative to the project directory
	Updated  []string
	Warnings []string
	Next     []string // commands, from the directory the command ran in

	base, root       string // the working directory and the project's
	yamlOld, yamlNew []byte // metro.yaml before and after, when it was edited
}

// Paths returns the created files as the user would type them from the
// working directory.
func (r *Result) Paths() []string {
	out := make([]string, 0, len(r.Created))
	for _, c := range r.Created {
		out = append(out, relSlash(r.base, filepath.Join(r.root, filepath.FromSlash(c))))
	}
	return out
}

// Report writes the files, the metro.yaml change and the next commands:
// the data of the command, for stdout. color adds ANSI colour; callers
// pass it only for a terminal.
func (r *Result) Report(w io.Writer, color bool) error {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return "\x1b[" + code + "m" + s + "\x1b[0m"
	}
	verb, green := "created", "32"
	if r.DryRun {
		verb, green = "would create", "33"
	}
	var b strings.Builder
	for _, p := range r.Paths() {
		fmt.Fprintf(&b, "%s %s\n", paint(green, verb), p)
	}
	for _, u := range r.Updated {
		p := relSlash(r.base, filepath.Join(r.root, filepath.FromSlash(u)))
		if r.DryRun {
			fmt.Fprintf(&b, "%s %s:\n", paint(green, "would change"), p)
			for _, l := range lineDiff(string(r.yamlOld), string(r.yamlNew)) {
				c := "32"
				if strings.HasPrefix(l, "-") {
					c = "31"
				}
				fmt.Fprintf(&b, "    %s\n", paint(c, l))
			}
		} else {
			fmt.Fprintf(&b, "%s %s\n", paint(green, "updated"), p)
		}
	}
	if r.DryRun {
		b.WriteString("\nnothing written (--dry-run)\n")
	}
	if len(r.Next) > 0 {
		b.WriteString("\nnext:\n")
		for _, n := range r.Next {
			fmt.Fprintf(&b, "  %s\n", paint("1", n))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Warn writes the warnings, which are not data: callers pass stderr.
func (r *Result) Warn(w io.Writer, color bool) error {
	for _, m := range r.Warnings {
		label := "warning:"
		if color {
			label = "\x1b[31m" + label + "\x1b[0m"
		}
		if _, err := fmt.Fprintf(w, "%s %s\n", label, m); err != nil {
			return err
		}
	}
	return nil
}

// lineDiff shows what changed between two texts as the lines removed and
// added between their common head and tail: an edit that inserts one block
// (which is all addWorker does) reads as exactly that block.
func lineDiff(a, b string) []string {
	al := strings.Split(strings.TrimSuffix(a, "\n"), "\n")
	bl := strings.Split(strings.TrimSuffix(b, "\n"), "\n")
	head := 0
	for head < len(al) && head < len(bl) && al[head] == bl[head] {
		head++
	}
	tail := 0
	for tail < len(al)-head && tail < len(bl)-head && al[len(al)-1-tail] == bl[len(bl)-1-tail] {
		tail++
	}
	var out []string
	for _, l := range al[head : len(al)-tail] {
		out = append(out, "- "+l)
	}
	for _, l := range bl[head : len(bl)-tail] {
		out = append(out, "+ "+l)
	}
	return out
}
