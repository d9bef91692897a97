package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/metropolis-dev/metro/internal/call"
	"github.com/metropolis-dev/metro/internal/iostreams"
	"github.com/metropolis-dev/metro/internal/natsconn"
)

func init() { commands = append(commands, newCallCmd) }

type callOptions struct {
	call.Options
	server string
	auth   natsconn.Auth
}

func newCallCmd(io *iostreams.IOStreams) *cobra.Command {
	o := &callOptions{}
	cmd := &cobra.Command{
		Use:   "call METHOD PATH",
		Short: "Send one request straight to a worker over NATS, like curl",
		Long: `Send one request over NATS as the gateway would, without the gateway, and
print the body (with -i, the status line and headers too). Exits 1 on a 5xx
answer or when no worker answers.

NATS is --server, else $NATS_URL, else the metro dev running in this project;
the subject prefix is --prefix, else $METRO_PREFIX, else that metro dev's.`,
		Example: `  metro call GET /products/42
  metro call POST /orders -d '{"items":[{"product":"apple","quantity":1}]}' -H 'Content-Type: application/json'`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Method, o.Path, o.Stdin = args[0], args[1], io.In
			// A bad command line is misuse wherever NATS is, or is not.
			if err := o.Validate(); err != nil {
				return usageErr(err)
			}
			nc, prefix, err := natsconn.Connect(o.server, ".", "metro call", o.auth)
			if err != nil {
				return err
			}
			defer nc.Close()
			// As metro tap: --prefix, else $METRO_PREFIX, else the dev's.
			if !cmd.Flags().Changed("prefix") {
				if v, ok := os.LookupEnv("METRO_PREFIX"); ok {
					o.Prefix = v
				} else {
					o.Prefix = prefix
				}
			}
			status, err := call.Do(cmd.Context(), nc, o.Options, io.Out)
			if errors.Is(err, call.ErrUsage) {
				return usageErr(err)
			}
			if err != nil {
				return err
			}
			if status >= 500 {
				return &exitError{code: 1, err: fmt.Errorf("%s %s: status %d", strings.ToUpper(o.Method), o.Path, status)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Data, "data", "d", "", "request body (@file reads a file, @- stdin)")
	f.StringArrayVarP(&o.Headers, "header", "H", nil, "request header \"Name: value\" (repeatable)")
	f.BoolVarP(&o.Include, "include", "i", false, "print the status line and response headers")
	f.StringVar(&o.Prefix, "prefix", "", "subject prefix (default: METRO_PREFIX, then the running metro dev's)")
	f.DurationVar(&o.Timeout, "timeout", 30*time.Second, "how long to wait for the reply")
	f.StringVar(&o.server, "server", "", "NATS server URL")
	f.StringVar(&o.auth.Creds, "creds", "", "NATS credentials file")
	f.StringVar(&o.auth.NKey, "nkey", "", "NATS nkey seed file")
	return cmd
}
