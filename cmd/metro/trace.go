package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/metropolis-dev/metro/internal/iostreams"
	"github.com/metropolis-dev/metro/internal/tracing"
)

func init() { commands = append(commands, newTraceCmd) }

type traceOptions struct {
	json bool
	wait time.Duration
}

func newTraceCmd(io *iostreams.IOStreams) *cobra.Command {
	var o traceOptions
	cmd := &cobra.Command{
		Use:   "trace ID",
		Short: "Print one request's trace from the running metro dev",
		Long: `Print the trace of one request as a tree with a timeline: each span's
service, name, status, start offset and duration, the time messages spent
in NATS between a sender and a worker, and errors marked (!).

ID is a trace id (32 hex digits, as in traceparent) or a request id (the
X-Request-Id a client got). The running metro dev in this directory or
above keeps the most recent traces; no collector is needed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return tracing.Show(cmd.Context(), tracing.ShowOptions{
				ID:   args[0],
				Dir:  ".",
				Wait: o.wait,
				JSON: o.json,
				Out:  io.Out,
			})
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, `print {"trace_id", "spans": [...]} as JSON`)
	cmd.Flags().DurationVar(&o.wait, "wait", 2*time.Second, "how long to wait for a trace not seen yet")
	return cmd
}
