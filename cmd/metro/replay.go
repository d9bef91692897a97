package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/metropolis-dev/metro/internal/iostreams"
	"github.com/metropolis-dev/metro/internal/natsconn"
	"github.com/metropolis-dev/metro/internal/replay"
)

func init() { commands = append(commands, newReplayCmd) }

type replayOptions struct {
	replay.Options
	server string
	prefix string
	auth   natsconn.Auth
}

func newReplayCmd(io *iostreams.IOStreams) *cobra.Command {
	o := &replayOptions{}
	cmd := &cobra.Command{
		Use:   "replay FILE",
		Short: "Send recorded requests again and compare the replies",
		Long: `Send each request of a recording (metro tap --record) again and compare
each reply with the recorded one: status, content type and body, JSON
compared as JSON. Prints a diff for each mismatch and a summary line.

Requests go over NATS (--server, else $NATS_URL, else the metro dev
running in this project), or through a gateway with --gateway URL.
--ignore takes a JSONPath (RFC 9535) of values that change from run to
run, such as ids and timestamps. Headers recorded as [redacted] are not
sent; -H sets a header on every request instead (say, a fresh bearer
token through a gateway that checks one).

Exits 0 when every reply matches, 1 when any differs or fails, 2 on
misuse or a recording that does not parse.`,
		Example: `  metro replay session.ndjson
  metro replay session.ndjson --filter 'POST /orders' --ignore '$.id'
  metro replay session.ndjson --gateway http://localhost:8080 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Concurrency < 1 {
				return usageErrorf("--concurrency must be at least 1")
			}
			o.File, o.Out, o.Log = args[0], io.Out, io.ErrOut
			var nc *nats.Conn
			defer func() {
				if nc != nil {
					nc.Close()
				}
			}()
			o.Connect = func() (*nats.Conn, string, error) {
				var prefix string
				var err error
				nc, prefix, err = natsconn.Connect(o.server, ".", "metro replay", o.auth)
				if err != nil {
					return nil, "", err
				}
				// As metro call: --prefix, else $METRO_PREFIX, else the dev's.
				if cmd.Flags().Changed("prefix") {
					prefix = o.prefix
				} else if v, ok := os.LookupEnv("METRO_PREFIX"); ok {
					prefix = v
				}
				return nc, prefix, nil
			}
			sum, err := replay.Run(cmd.Context(), o.Options)
			var ue *replay.UsageError
			if errors.As(err, &ue) {
				return usageErr(ue.Err)
			}
			if err != nil {
				return err
			}
			if !sum.OK() {
				return &exitError{code: 1, err: fmt.Errorf("%d of %d replayed exchanges differ, %d failed", sum.Differed, sum.Replayed, sum.Failed)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.Filters, "filter", nil, "replay only exchanges on this `SUBJECT` or route ('METHOD /path'; repeatable)")
	f.StringVar(&o.Gateway, "gateway", "", "send through the gateway at `URL` instead of over NATS")
	f.StringArrayVar(&o.Ignore, "ignore", nil, "leave the JSON values at this `JSONPATH` out of comparisons (repeatable), e.g. '$.id'")
	f.IntVar(&o.Concurrency, "concurrency", 1, "requests in flight at once (1: one after another, in recorded order)")
	f.BoolVar(&o.JSON, "json", false, "write one JSON result per exchange")
	f.StringArrayVarP(&o.Headers, "header", "H", nil, "set header \"Name: value\" on every request, in place of the recorded one (repeatable), e.g. a fresh token for a redacted Authorization")
	f.DurationVar(&o.Timeout, "timeout", 30*time.Second, "how long to wait for each reply")
	f.StringVar(&o.server, "server", "", "NATS server URL (default: $NATS_URL, then the running metro dev)")
	f.StringVar(&o.prefix, "prefix", "", "subject prefix (default: $METRO_PREFIX, then the running metro dev's)")
	f.StringVar(&o.auth.Creds, "creds", "", "NATS credentials file")
	f.StringVar(&o.auth.NKey, "nkey", "", "NATS nkey seed file")
	return cmd
}
