package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/metropolis-dev/metro/internal/iostreams"
)

// commands holds the constructors of the subcommands; each command file
// adds its own in an init function, so adding a command touches one file.
var commands []func(*iostreams.IOStreams) *cobra.Command

func newRootCmd(io *iostreams.IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:           "metro",
		Short:         "HTTP gateway and tools for NATS workers",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(io.Out)
	root.SetErr(io.ErrOut)
	root.SetIn(io.In)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	for _, c := range commands {
		cmd := c(io)
		if cmd.Args == nil {
			cmd.Args = cobra.NoArgs
		}
		cmd.Args = wrapArgs(cmd.Args)
		root.AddCommand(cmd)
	}
	return root
}

// wrapArgs makes argument-count errors usage errors (exit 2).
func wrapArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return usageErr(err)
		}
		return nil
	}
}

// usageError marks a misuse of the command line: exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErr(err error) error { return &usageError{err} }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// exitError carries an explicit exit code (e.g. metro call on a 5xx).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
