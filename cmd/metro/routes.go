package main

import (
	"github.com/spf13/cobra"

	"github.com/metropolis-dev/metro/internal/devserver"
	"github.com/metropolis-dev/metro/internal/iostreams"
)

func init() { commands = append(commands, newRoutesCmd) }

type routesOptions struct {
	server string
	json   bool
}

func newRoutesCmd(io *iostreams.IOStreams) *cobra.Command {
	var o routesOptions
	cmd := &cobra.Command{
		Use:   "routes",
		Short: "Print the route table that the running workers announce",
		Long: `Ask every running NATS service for its routes and print them: a table on
a terminal, JSON otherwise or with --json.

The NATS server is --server, else $NATS_URL, else the one of the metro dev
running in this directory or above.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return devserver.Routes(cmd.Context(), devserver.RoutesOptions{
				Server: o.server,
				Dir:    ".",
				JSON:   o.json,
				TTY:    io.IsStdoutTTY(),
				Out:    io.Out,
				Err:    io.ErrOut,
			})
		},
	}
	cmd.Flags().StringVar(&o.server, "server", "", "NATS URL to ask (default: $NATS_URL, then .metro/dev.json)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON even on a terminal")
	return cmd
}
