package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/metropolis-dev/metro/internal/config"
)

// RunOptions are the whole of `metro deploy`.
type RunOptions struct {
	Options
	Dir      string // where to search for metro.yaml (the working directory)
	Config   string // an explicit metro.yaml; overrides the search
	EmitYAML bool   // write manifests instead of applying them
	Output   string // with EmitYAML: "-" or "" stdout, a directory (existing, or ending in /), or a file
	Stdout   io.Writer
	Stderr   io.Writer
}

// Run loads metro.yaml, renders the manifests and writes or applies them.
func Run(ctx context.Context, o RunOptions) error {
	var (
		c   *config.Config
		err error
	)
	if o.Config != "" {
		c, err = config.Load(o.Config)
	} else {
		c, err = config.LoadDir(o.Dir)
	}
	if err != nil {
		return err
	}
	ms, err := Render(c, o.Options)
	if err != nil {
		return err
	}
	if !o.EmitYAML {
		return Apply(ctx, ms, o.Stdout, o.Stderr)
	}
	switch {
	case o.Output == "" || o.Output == "-":
		return WriteYAML(o.Stdout, ms)
	case isDir(o.Output):
		if err := WriteDir(o.Output, ms); err != nil {
			return err
		}
		fmt.Fprintf(o.Stderr, "wrote %d manifests and kustomization.yaml to %s\n", len(ms), o.Output)
		return nil
	default:
		if err := os.WriteFile(o.Output, YAML(ms), 0o644); err != nil {
			return fmt.Errorf("writing manifests: %w", err)
		}
		fmt.Fprintf(o.Stderr, "wrote %d manifests to %s\n", len(ms), o.Output)
		return nil
	}
}

// isDir: an existing directory, or a path the user marks as one.
func isDir(p string) bool {
	if strings.HasSuffix(p, "/") || strings.HasSuffix(p, string(os.PathSeparator)) {
		return true
	}
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
