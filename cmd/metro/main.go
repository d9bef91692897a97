// Command metro puts NATS workers behind one HTTP gateway: it scaffolds
// projects, runs them locally, taps their traffic and deploys them.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/metropolis-dev/metro/internal/iostreams"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, iostreams.System(), os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes one command line and turns its error into an exit code,
// the only place that does so: 0 success, 1 failure, 2 misuse.
func run(ctx context.Context, io *iostreams.IOStreams, args []string) int {
	root := newRootCmd(io)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(io.ErrOut, "metro: "+oneLine(err.Error()))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
