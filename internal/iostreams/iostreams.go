// Package iostreams carries a command's standard streams and what is known
// about them (is stdout a terminal, may it be coloured), so commands never
// look at os.Stdout themselves and tests can fake a terminal.
package iostreams

import (
	"bytes"
	"io"
	"log/slog"
	"os"

	"golang.org/x/term"
)

// IOStreams is the I/O of one command run.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdoutTTY bool
	stderrTTY bool
	noColor   bool
}

// System returns the process's own streams.
func System() *IOStreams {
	return &IOStreams{
		In:        os.Stdin,
		Out:       os.Stdout,
		ErrOut:    os.Stderr,
		stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		noColor:   os.Getenv("NO_COLOR") != "",
	}
}

// Test returns streams backed by buffers: stdin, stdout, stderr.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// SetTTY fakes terminals for tests.
func (s *IOStreams) SetTTY(stdout, stderr bool) { s.stdoutTTY, s.stderrTTY = stdout, stderr }

// IsStdoutTTY reports whether stdout is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStderrTTY reports whether stderr is a terminal.
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// ColorEnabled reports whether stdout may carry colour: a terminal and no NO_COLOR.
func (s *IOStreams) ColorEnabled() bool { return s.stdoutTTY && !s.noColor }

// ColorEnabledStderr is ColorEnabled for stderr, where logs and prefixed output go.
func (s *IOStreams) ColorEnabledStderr() bool { return s.stderrTTY && !s.noColor }

// Logger returns a logger writing to stderr: text for a person on a
// terminal, JSON for machines otherwise.
func (s *IOStreams) Logger(level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if s.stderrTTY {
		return slog.New(slog.NewTextHandler(s.ErrOut, opts))
	}
	return slog.New(slog.NewJSONHandler(s.ErrOut, opts))
}
