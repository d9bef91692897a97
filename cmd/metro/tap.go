package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/iostreams"
	"github.com/metropolis-dev/metro/internal/tap"
	"github.com/metropolis-dev/metro/internal/tui"
)

func init() { commands = append(commands, newTapCmd) }

func newTapCmd(io *iostreams.IOStreams) *cobra.Command {
	var opts tap.Options
	recordMaxStream := config.ByteSize(tap.DefaultRecordMaxStream)
	cmd := &cobra.Command{
		Use:   "tap [SUBJECT | 'METHOD /path'...]",
		Short: "Watch requests and replies live",
		Long: `Watch the requests on NATS subjects and their replies, paired into
exchanges: method, path, status, latency, sizes and worker.

SUBJECT is a NATS subject with wildcards ('users.>') or a route pattern
('GET /users/{id}'); with none, every metro subject is tapped. Tap only
listens: it never answers and never joins a queue group.

On a terminal tap shows a live table (? lists the keys). Otherwise, or
with --json, it writes one JSON object per exchange to stdout.

The server is --server, else NATS_URL, else the metro dev running in
this project (.metro/dev.json).

A streamed exchange (a body sent in parts past NATS's message size, or
server-sent events) is one row: its size with the parts it came in
("5.0M/81p") and its time to the first part and to the end
("1.2ms→340ms"); a stream that broke is marked ✗.

With --record FILE every finished exchange is also written to FILE as
NDJSON, bodies whole, for metro replay and metro mock; a streamed body
over --record-max-stream is recorded as its length and SHA-256 only. The
values of Authorization, Cookie, Set-Cookie and of headers named with
--redact are replaced by "[redacted]" before anything is written.`,
		Example: `  metro tap
  metro tap 'GET /users/{id}'
  metro tap 'orders.>' --json --count 10
  metro tap --record session.ndjson --redact X-Api-Key`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Buffer < 1 {
				return usageErrorf("--buffer must be at least 1")
			}
			if opts.Count < 0 || opts.Timeout < 0 {
				return usageErrorf("--count and --timeout may not be negative")
			}
			if recordMaxStream < 1 || recordMaxStream > 1<<40 {
				return usageErrorf("--record-max-stream must be at least 1 byte")
			}
			opts.RecordMaxStream = int(recordMaxStream)
			opts.Subjects = args
			opts.EnvURL = os.Getenv("NATS_URL")
			opts.PrefixSet = cmd.Flags().Changed("prefix")
			if v, ok := os.LookupEnv("METRO_PREFIX"); ok && !opts.PrefixSet {
				opts.Prefix, opts.PrefixSet = v, true
			}
			dir, err := os.Getwd()
			if err != nil {
				return fmt.Errorf("finding the working directory: %w", err)
			}
			opts.Dir = dir
			err = tui.Run(cmd.Context(), io, opts)
			if errors.Is(err, tap.ErrBadSubject) {
				return usageErr(err)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Server, "server", "", "NATS server URL (default: NATS_URL, then the running metro dev)")
	f.StringVar(&opts.Creds, "creds", "", "NATS credentials file")
	f.StringVar(&opts.NKey, "nkey", "", "NATS nkey seed file")
	f.StringVar(&opts.Prefix, "prefix", "", "subject prefix of the gateway (default: METRO_PREFIX, then the running metro dev's)")
	f.IntVar(&opts.Buffer, "buffer", tap.DefaultBuffer, "exchanges kept for display")
	f.BoolVar(&opts.JSON, "json", false, "write NDJSON even on a terminal")
	f.IntVar(&opts.Count, "count", 0, "exit after `N` exchanges (NDJSON; 0: no limit)")
	f.DurationVar(&opts.Timeout, "timeout", 0, "exit after `D` (0: no limit)")
	f.StringVar(&opts.Record, "record", "", "also write every finished exchange to `FILE` (NDJSON, secrets redacted)")
	f.Var(&recordMaxStream, "record-max-stream", "largest streamed body --record writes whole; a larger one is recorded as its length and SHA-256")
	f.StringArrayVar(&opts.Redact, "redact", nil, "a header `NAME` whose values are not recorded (repeatable; Authorization, Cookie and Set-Cookie always are)")
	return cmd
}
