package main

import (
	"github.com/spf13/cobra"

	"github.com/metropolis-dev/metro/internal/devserver"
	"github.com/metropolis-dev/metro/internal/iostreams"
)

func init() { commands = append(commands, newDevCmd) }

type devOptions struct {
	listen   string
	natsPort int
}

func newDevCmd(io *iostreams.IOStreams) *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run NATS, the gateway and every worker, rebuilt and restarted on change",
		Long: `Run the project of the metro.yaml found here or above: an embedded NATS
server (unless nats.url is set), the gateway, and every worker, each
rebuilt and replaced without downtime when its files change.

Ctrl-C stops everything; a second Ctrl-C stops it at once.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := devserver.Options{
				Dir:    ".",
				Listen: o.listen,
				Out:    io.ErrOut,
				Color:  io.ColorEnabledStderr(),
			}
			if cmd.Flags().Changed("nats-port") {
				if o.natsPort < 0 || o.natsPort > 65535 {
					return usageErrorf("--nats-port %d is not a port (0 to 65535; 0 picks a free one)", o.natsPort)
				}
				opts.NATSPort = &o.natsPort
			}
			return devserver.Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&o.listen, "listen", "", "gateway listen address for this run (default: gateway.listen, :8080)")
	cmd.Flags().IntVar(&o.natsPort, "nats-port", 0, "embedded NATS port for this run (default: nats.port, 4222; 0 picks a free one)")
	return cmd
}
