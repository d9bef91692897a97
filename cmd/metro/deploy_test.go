package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metropolis-dev/metro/internal/deploy"
	"github.com/metropolis-dev/metro/internal/iostreams"
	"github.com/metropolis-dev/metro/internal/natsauth"
)

func TestDeployCommand(t *testing.T) {
	golden, err := os.ReadFile("../../internal/deploy/testdata/shop.golden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// A copy of the project, holding the golden's NATS keys where metro
	// deploy keeps them.
	project := t.TempDir()
	if err := os.CopyFS(project, os.DirFS("../../internal/deploy/testdata/shop")); err != nil {
		t.Fatal(err)
	}
	keys, err := natsauth.LoadKeys("../../internal/deploy/testdata/nkeys.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := natsauth.SaveKeys(filepath.Join(project, deploy.KeysFile), keys); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(project, "metro.yaml")
	tests := []struct {
		name     string
		args     []string
		path     string // PATH for the run; "" keeps it
		code     int
		stdout   string // exact, when set
		stderrHa string // contained in stderr
	}{
		{"emit", []string{"deploy", "--emit-yaml", "--config", cfg}, "", 0, string(golden), ""},
		{"output without emit", []string{"deploy", "-o", "x", "--config", cfg}, "", 2, "", "-o/--output needs --emit-yaml"},
		{"extra argument", []string{"deploy", "now"}, "", 2, "", "unknown command"},
		{"bad flag", []string{"deploy", "--emit-yml"}, "", 2, "", "unknown flag"},
		{"bad tag", []string{"deploy", "--emit-yaml", "--config", cfg, "--tag", "a b"}, "", 1, "", `--tag "a b" is not an image tag`},
		{"no kubectl", []string{"deploy", "--config", cfg}, "/nonexistent", 1, "", "metro: kubectl not found in PATH"},
		{"no metro.yaml", []string{"deploy", "--emit-yaml", "--config", "nowhere/metro.yaml"}, "", 1, "", "reading config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.path != "" {
				t.Setenv("PATH", tt.path)
			}
			io, _, out, errOut := iostreams.Test()
			code := run(context.Background(), io, tt.args)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errOut.String())
			}
			if tt.stdout != "" && out.String() != tt.stdout {
				t.Errorf("stdout is not the golden manifests")
			}
			if !strings.Contains(errOut.String(), tt.stderrHa) {
				t.Errorf("stderr %q does not contain %q", errOut.String(), tt.stderrHa)
			}
			if tt.code != 0 && strings.Count(strings.TrimSpace(errOut.String()), "\n") != 0 {
				t.Errorf("stderr is not one line: %q", errOut.String())
			}
		})
	}
}
