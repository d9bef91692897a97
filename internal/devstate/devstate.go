// Package devstate is the file .metro/dev.json through which a running
// `metro dev` tells other commands (tap, routes, call) where it is.
package devstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// RelPath is where the state file lives, relative to the project directory.
const RelPath = ".metro/dev.json"

// ErrNotRunning is returned by Find when no state file is found.
var ErrNotRunning = errors.New("no running metro dev found (no .metro/dev.json here or above)")

// State is what a running metro dev publishes.
type State struct {
	NATSURL    string           `json:"nats_url"`
	GatewayURL string           `json:"gateway_url"`
	AdminURL   string           `json:"admin_url"`
	Prefix     string           `json:"prefix,omitempty"`
	PID        int              `json:"pid"`
	Workers    map[string][]int `json:"workers"` // worker name -> pids of its replicas
	// NKeys are the seed files of the identities the tools connect as,
	// by role ("tap", "tools"), when the bus is locked.
	NKeys map[string]string `json:"nkeys,omitempty"`

	// TraceURL is the trace collector that `metro trace` asks
	// (internal/tracing).
	TraceURL string `json:"trace_url,omitempty"`
}

// Write writes the state file under projectDir atomically.
func Write(projectDir string, s State) error {
	p := filepath.Join(projectDir, RelPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("writing dev state: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("writing dev state: %w", err)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing dev state: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("writing dev state: %w", err)
	}
	return nil
}

// Remove deletes the state file under projectDir; a missing file is fine.
func Remove(projectDir string) error {
	err := os.Remove(filepath.Join(projectDir, RelPath))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing dev state: %w", err)
	}
	return nil
}

// Find reads the state file in dir or the nearest parent that has one.
func Find(dir string) (State, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return State{}, err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, RelPath))
		if err == nil {
			var s State
			if err := json.Unmarshal(b, &s); err != nil {
				return State{}, fmt.Errorf("reading %s: %w", filepath.Join(dir, RelPath), err)
			}
			return s, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return State{}, fmt.Errorf("reading dev state: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return State{}, ErrNotRunning
		}
		dir = parent
	}
}
