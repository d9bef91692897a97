package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/metropolis-dev/metro/internal/iostreams"
	"github.com/metropolis-dev/metro/internal/scaffold"
)

func init() { commands = append(commands, newInitCmd) }

func newInitCmd(io *iostreams.IOStreams) *cobra.Command {
	opts := scaffold.InitOptions{Tidy: true, Stderr: io.ErrOut}
	cmd := &cobra.Command{
		Use:   "init NAME",
		Short: "Create a new project: go.mod, metro.yaml and a first worker",
		Long: `Create the directory NAME with go.mod, metro.yaml, the worker workers/hello
(GET /hello and GET /hello/{name}) with its test, a README, .gitignore and the
gateway's Dockerfile, then run go mod tidy in it.

go.mod requires the metro release this binary was built from. A metro built
from source has none: give --metro-src (or METRO_SRC), the metro source tree,
and go.mod replaces the module with it.`,
		Example: `  metro init shop
  metro init shop --module github.com/acme/shop
  metro init shop --metro-src ~/src/metro`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if opts.MetroSrc == "" {
				opts.MetroSrc = os.Getenv("METRO_SRC")
			}
			res, err := scaffold.Init(cmd.Context(), opts)
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
	f.StringVar(&opts.Module, "module", "", "Go module path (default NAME)")
	f.StringVar(&opts.MetroSrc, "metro-src", "", "metro source tree for a replace directive in go.mod (default $METRO_SRC)")
	f.BoolVar(&opts.Force, "force", false, "write into a directory that is not empty")
	f.BoolVar(&opts.DryRun, "dry-run", false, "print the files that would be written, write nothing")
	return cmd
}

// scaffoldErr makes the scaffold's misuse errors exit with code 2.
func scaffoldErr(err error) error {
	for _, e := range []error{
		scaffold.ErrInvalidName, scaffold.ErrInvalidRoute, scaffold.ErrUnknownLang,
		scaffold.ErrExists, scaffold.ErrNotEmpty, scaffold.ErrMetroSrc,
	} {
		if errors.Is(err, e) {
			return usageErr(err)
		}
	}
	return err
}
