// Command report summarizes the samples that bench/run collected: it prints
// the results table on stdout and writes the JSON for bench/results.
//
//	report -dir WORKDIR -json bench/results/latest.json [-reload reload.json]
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/metropolis-dev/metro/bench/internal/report"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		slog.Error("report", "err", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory bench/run wrote the samples to")
	out := fs.String("json", "", "file to write the JSON result to (none when empty)")
	reload := fs.String("reload", "", "JSON printed by bench/reload, kept under the reload key")
	clk := fs.Int("clk-tck", 100, "clock ticks per second of /proc CPU times (getconf CLK_TCK)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}
	transfer, err := report.LoadTransfer(*dir)
	if err != nil {
		return fmt.Errorf("loading the large-transfer samples: %w", err)
	}
	meta, samples, err := report.Load(*dir)
	// A run of scenario (x) alone has no request-rate samples.
	if err != nil && !(errors.Is(err, report.ErrNoSamples) && len(transfer) > 0) {
		return fmt.Errorf("loading samples: %w", err)
	}
	if *clk <= 0 {
		return fmt.Errorf("-clk-tck must be positive, got %d", *clk)
	}
	res := report.Result{Schema: 1, Run: meta}
	if len(samples) > 0 {
		if res, err = report.Summarize(meta, samples, *clk); err != nil {
			return fmt.Errorf("summarizing samples: %w", err)
		}
	}
	res.Transfer = report.SummarizeTransfer(transfer, *clk, &res.Goals)
	if *reload != "" {
		b, err := os.ReadFile(*reload)
		if err != nil {
			return fmt.Errorf("reading the reload result: %w", err)
		}
		if !json.Valid(b) {
			return fmt.Errorf("reload result %s is not JSON", *reload)
		}
		res.Reload = json.RawMessage(b)
	}
	if err := report.Render(stdout, res); err != nil {
		return err
	}
	if *out == "" {
		return nil
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the result: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return fmt.Errorf("creating the results directory: %w", err)
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the result: %w", err)
	}
	return nil
}
