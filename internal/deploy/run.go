package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/natsauth"
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
	if !o.UserSecrets {
		// Seeds made once and kept: the same Secrets on every run, and
		// pods that keep their credentials across applies.
		if o.Keys, err = natsauth.LoadKeys(KeysPath(c)); err != nil {
			return err
		}
		before := len(o.Keys)
		ms, err := Render(c, o.Options) // fills o.Keys
		if err != nil {
			return err
		}
		if len(o.Keys) != before {
			if err := natsauth.SaveKeys(KeysPath(c), o.Keys); err != nil {
				return err
			}
			fmt.Fprintf(o.Stderr, "NATS credentials kept in %s (keep it out of git; delete it to make new ones)\n", KeysPath(c))
		}
		return o.write(ctx, ms)
	}
	ms, err := Render(c, o.Options)
	if err != nil {
		return err
	}
	return o.write(ctx, ms)
}

// write applies the manifests or writes them where o says.
func (o RunOptions) write(ctx context.Context, ms []Manifest) error {
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
