package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/metropolis-dev/metro/internal/iostreams"
	"github.com/metropolis-dev/metro/internal/scaffold"
)

func init() { commands = append(commands, newNewCmd) }

func newNewCmd(io *iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "new",
		Short: "Add a part to the project (metro new worker NAME)",
		// Runnable, so that "metro new" and "metro new gadget" are
		// misuse (exit 2) rather than a help page that exits 0.
		RunE: func(*cobra.Command, []string) error {
			return usageErrorf("metro new needs to know what to add: metro new worker NAME")
		},
	}
	cmd.AddCommand(newNewWorkerCmd(io))
	return cmd
}

func newNewWorkerCmd(io *iostreams.IOStreams) *cobra.Command {
	opts := scaffold.WorkerOptions{Install: true, Stderr: io.ErrOut}
	cmd := &cobra.Command{
		Use:   "worker NAME",
		Short: "Add a worker from a template and append it to metro.yaml",
		Long: `Write workers/NAME, a worker in Go (the metro SDK, a handler and a test per
route, a Dockerfile) or in Node.js (the npm nats client speaking the metro
protocol, node:test tests, a Dockerfile; npm install is run in it), and add
it to metro.yaml, keeping every comment and line of the file as it was.

NAME becomes a queue group, a NATS service and a Kubernetes name, so it must
be a DNS-1123 label. Each --route is a Go ServeMux pattern; without one the
worker answers GET /NAME.`,
		Example: `  metro new worker billing --route "GET /invoices/{id}" --route "POST /invoices"
  metro new worker notify --lang node
  metro new worker search --dry-run`,
		Args: wrapArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			res, err := scaffold.AddWorker(cmd.Context(), opts)
			if err != nil {
				return scaffoldErr(err)
			}
			if err := res.Warn(io.ErrOut, io.ColorEnabledStderr()); err != nil {
				return err
			}
			return res.Report(io.Out, io.ColorEnabled())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Lang, "lang", scaffold.LangGo, "language of the worker: "+strings.Join(scaffold.Langs, "|"))
	f.StringArrayVar(&opts.Routes, "route", nil, `a route it answers, e.g. "GET /users/{id}" (repeatable; default "GET /NAME")`)
	f.BoolVar(&opts.DryRun, "dry-run", false, "print the files that would be written, write nothing")
	return cmd
}
