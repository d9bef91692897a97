package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/iostreams"
	"github.com/metropolis-dev/metro/internal/mock"
	"github.com/metropolis-dev/metro/internal/natsconn"
)

func init() { commands = append(commands, newMockCmd) }

type mockOptions struct {
	mock.Options
	server string
	auth   natsconn.Auth
}

func newMockCmd(io *iostreams.IOStreams) *cobra.Command {
	o := &mockOptions{}
	cmd := &cobra.Command{
		Use:   "mock WORKER --from FILE",
		Short: "Stand in for a worker, answering from a recording",
		Long: `Run a stand-in for WORKER that answers from a recording (metro tap
--record): it joins WORKER's queue group, announces the recorded routes
as a NATS service (so the gateway and metro routes see it), and answers
each request with the recorded reply that matches its method, path and
query, then its body, keeping the recorded status and headers. A request
with no recording gets a 404 problem reply naming the nearest recorded
request.

NATS is --server, else $NATS_URL, else the metro dev running in this
project. In metro.yaml, workers.NAME.mock: FILE makes metro dev run this
in place of the worker.

Exits 2 on misuse or a recording that does not parse or has no reply
from WORKER, 1 when it cannot serve (no NATS).`,
		Example: `  metro mock catalog --from session.ndjson`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Worker = args[0]
			if !config.IsDNSLabel(o.Worker) {
				return usageErrorf("worker name %q is not a DNS-1123 label", o.Worker)
			}
			if o.File == "" {
				return usageErrorf("--from FILE is required: the recording to answer from")
			}
			t, err := natsconn.Resolve(o.server, os.Getenv("NATS_URL"), ".")
			if errors.Is(err, natsconn.ErrNoServer) {
				return err
			}
			if err != nil {
				return fmt.Errorf("finding the running metro dev: %w", err)
			}
			o.URL = t.URL
			if !cmd.Flags().Changed("prefix") {
				if v, ok := os.LookupEnv("METRO_PREFIX"); ok {
					o.Prefix = v
				} else {
					o.Prefix = t.Prefix
				}
			}
			if o.NATS, err = o.auth.Options(); err != nil {
				return err
			}
			o.Logger = slog.New(slog.NewTextHandler(io.ErrOut, nil))
			err = mock.Run(cmd.Context(), o.Options)
			// A recording that cannot stand in at all is misuse, as
			// metro replay has it.
			var ue *mock.UsageError
			if errors.As(err, &ue) {
				return usageErr(ue.Err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.File, "from", "", "the recording to answer from (`FILE`, written by metro tap --record)")
	f.StringVar(&o.Prefix, "prefix", "", "subject prefix (default: $METRO_PREFIX, then the running metro dev's)")
	f.StringVar(&o.server, "server", "", "NATS server URL (default: $NATS_URL, then the running metro dev)")
	f.StringVar(&o.auth.Creds, "creds", "", "NATS credentials file")
	f.StringVar(&o.auth.NKey, "nkey", "", "NATS nkey seed file")
	return cmd
}
