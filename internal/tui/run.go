// Package tui is metro tap's front end: a bubbletea program showing
// exchanges live on a terminal, or NDJSON when stdout is not one. It
// hides the screen layout, the keys, and how display batches are taken
// from intake so that rendering never slows intake down.
package tui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/metropolis-dev/metro/internal/devstate"
	"github.com/metropolis-dev/metro/internal/iostreams"
	"github.com/metropolis-dev/metro/internal/tap"
	"github.com/metropolis-dev/metro/internal/tracing"
)

// devTraces asks the metro dev running in dir or above, found at each
// lookup, since it may start after tap.
func devTraces(dir string) TraceFunc {
	if dir == "" {
		dir = "."
	}
	return func(ctx context.Context, id string) (tracing.Trace, error) {
		st, err := devstate.Find(dir)
		if err != nil {
			return tracing.Trace{}, err
		}
		if st.TraceURL == "" {
			return tracing.Trace{}, errors.New("the running metro dev keeps no traces")
		}
		return tracing.Fetch(ctx, st.TraceURL, id)
	}
}

// Run is metro tap: it connects, subscribes, and shows exchanges until ctx
// ends, opts.Timeout passes or (NDJSON) opts.Count exchanges are written.
func Run(ctx context.Context, ios *iostreams.IOStreams, opts tap.Options) error {
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	target, err := tap.Resolve(opts)
	if err != nil {
		return err
	}
	// Arguments are checked before connecting: a typo is a misuse whether
	// or not a server is up.
	if _, _, err := tap.Subscriptions(target.Prefix, opts.Subjects); err != nil {
		return err
	}
	nc, err := tap.Connect(opts, target)
	if err != nil {
		return err
	}
	defer nc.Close()
	in, err := tap.Subscribe(nc, target.Prefix, opts.Subjects)
	if err != nil {
		return err
	}
	subjects := strings.Join(in.Subjects(), " ")
	if opts.Record != "" {
		// The file may hold personal data even with secrets redacted:
		// readable by its owner only.
		f, err := os.OpenFile(opts.Record, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("opening the recording: %w", err)
		}
		defer f.Close()
		in.SetRecorder(tap.NewFileRecorder(f, opts.Redact))
		in.SetRecordMaxStream(opts.RecordMaxStream)
	}

	if opts.JSON || !ios.IsStdoutTTY() {
		log := slog.New(slog.NewTextHandler(ios.ErrOut, nil))
		args := []any{"server", target.Display(), "subjects", subjects, "prefix", target.Prefix}
		if opts.Record != "" {
			args = append(args, "record", opts.Record)
		}
		log.Info("tapping", args...)
		return tap.WriteNDJSON(ctx, in, ios.Out, opts.Count)
	}

	if !ios.ColorEnabled() {
		lipgloss.SetColorProfile(termenv.Ascii)
	}
	title := target.Display() + "  " + subjects
	if target.Prefix != "" {
		title += "  prefix " + target.Prefix
	}
	return runProgram(ctx, ios, in, Config{Title: title, Buffer: opts.Buffer, Tick: DefaultTick, Traces: devTraces(opts.Dir)})
}

// runProgram runs intake and the bubbletea program side by side; each
// stops the other, and both are waited for.
func runProgram(ctx context.Context, ios *iostreams.IOStreams, in *tap.Intake, cfg Config) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	feed := tap.NewFeed(cfg.Buffer)
	var wg sync.WaitGroup
	var intakeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		intakeErr = in.Run(ctx, feed.Add, feed.SetIntake)
	}()

	p := tea.NewProgram(New(feed, cfg),
		tea.WithContext(ctx),
		tea.WithAltScreen(),
		tea.WithInput(ios.In),
		tea.WithOutput(ios.Out),
	)
	_, err := p.Run()
	cancel()
	wg.Wait()
	if errors.Is(err, tea.ErrProgramKilled) {
		// Stopped through ctx: a signal, --timeout, or intake ending
		// (whose error, if any, is reported below).
		err = nil
	}
	if err != nil {
		return fmt.Errorf("running the display: %w", err)
	}
	if intakeErr != nil {
		return fmt.Errorf("tapping: %w", intakeErr)
	}
	return nil
}
