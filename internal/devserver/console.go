package devserver

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// console is the one place the output of every process of a dev session
// meets: each line is written whole, behind an aligned "name | " prefix,
// so lines of concurrent processes never interleave mid-line.
type console struct {
	mu    sync.Mutex
	w     io.Writer
	color bool
	width int
	next  int // next palette index
	hues  map[string]string
}

// palette holds ANSI colours that read on dark and light terminals; red is
// left out so that it keeps meaning "error".
var palette = []string{"36", "33", "32", "35", "34", "96", "93", "92", "95", "94"}

func newConsole(w io.Writer, color bool, names []string) *console {
	c := &console{w: w, color: color, hues: map[string]string{}}
	for _, n := range names {
		c.width = max(c.width, len(n))
	}
	return c
}

func (c *console) hue(name string) string {
	h, ok := c.hues[name]
	if !ok {
		h = palette[c.next%len(palette)]
		c.next++
		c.hues[name] = h
	}
	return h
}

// line writes one line of text as coming from name.
func (c *console) line(name, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeLocked(name, text)
}

func (c *console) writeLocked(name, text string) {
	var b bytes.Buffer
	if c.color {
		fmt.Fprintf(&b, "\x1b[%sm%-*s |\x1b[0m %s\n", c.hue(name), c.width, name, text)
	} else {
		fmt.Fprintf(&b, "%-*s | %s\n", c.width, name, text)
	}
	c.w.Write(b.Bytes()) //nolint:errcheck // nowhere to report a failing terminal
}

// printf writes a message of metro dev itself.
func (c *console) printf(format string, args ...any) {
	c.lines("dev", fmt.Sprintf(format, args...))
}

// lines writes a block of text line by line, with no other output between.
func (c *console) lines(name, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range bytes.Split(bytes.TrimRight([]byte(text), "\n"), []byte("\n")) {
		c.writeLocked(name, string(l))
	}
}

// raw writes text as it is (the banner), between whole lines of others.
func (c *console) raw(text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	io.WriteString(c.w, text) //nolint:errcheck
}

// maxLine bounds a line held back while waiting for its newline, so that
// a process printing without newlines still shows up.
const maxLine = 64 << 10

// lineWriter is an io.Writer that hands complete lines to the console.
type lineWriter struct {
	c    *console
	name string
	mu   sync.Mutex
	buf  []byte
}

func (c *console) writer(name string) *lineWriter { return &lineWriter{c: c, name: name} }

func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.buf = append(lw.buf, p...)
	for {
		i := bytes.IndexByte(lw.buf, '\n')
		if i < 0 {
			if len(lw.buf) >= maxLine {
				lw.c.line(lw.name, string(lw.buf))
				lw.buf = lw.buf[:0]
			}
			// Move the partial line to the front so the buffer does not creep.
			lw.buf = append(lw.buf[:0], lw.buf...)
			return len(p), nil
		}
		lw.c.line(lw.name, string(bytes.TrimSuffix(lw.buf[:i], []byte("\r"))))
		lw.buf = lw.buf[i+1:]
	}
}

// Flush writes a last line that had no newline.
func (lw *lineWriter) Flush() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if len(lw.buf) > 0 {
		lw.c.line(lw.name, string(lw.buf))
		lw.buf = nil
	}
}
