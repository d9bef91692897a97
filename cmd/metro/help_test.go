package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/metropolis-dev/metro/internal/iostreams"
)

// TestHelpDefaults: every flag of every command names its default at
// most once, and the defaults shown are the ones that apply.
func TestHelpDefaults(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		usage := c.LocalFlags().FlagUsages()
		for _, l := range strings.Split(usage, "\n") {
			if strings.Count(l, "(default") > 1 {
				t.Errorf("%s: %s", c.CommandPath(), strings.TrimSpace(l))
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(ios))

	code, out, stderr := runCLI(t, "gateway", "--help")
	if code != 0 {
		t.Fatalf("gateway --help: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"default per-request timeout (default 30s)\n", "largest request body (default 1MiB)\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("gateway --help does not say %q:\n%s", want, out)
		}
	}
}
