package devserver

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/recording"
)

// selfCommand is how metro dev runs its own binary's subcommands: the
// running executable (metro), whatever it was installed as.
var selfCommand = func() (string, error) { return os.Executable() }

// mockSpec is a worker whose metro.yaml entry says mock: FILE. It runs
// `metro mock NAME --from FILE` in place of the worker, like any worker
// process (replicas, restarts, output), and restarts it when the
// recording changes. The recording is read once here, so a mistake in
// it stops metro dev at start with the file and line.
func mockSpec(cfg *config.Config, name string, w config.Worker) (workerSpec, error) {
	file := w.Mock
	if !filepath.IsAbs(file) {
		file = filepath.Join(cfg.Dir, file)
	}
	key := "workers." + name + ".mock"
	if _, err := recording.ReadFile(file); err != nil {
		return workerSpec{}, cfg.Errorf(key, "%v", err)
	}
	self, err := selfCommand()
	if err != nil {
		return workerSpec{}, fmt.Errorf("finding the metro binary to run metro mock %s: %w", name, err)
	}
	s := workerSpec{
		name:     name,
		replicas: max(w.Replicas, 1),
		command:  []string{self, "mock", name, "--from", file},
		dir:      cfg.Dir,
		watch:    watchSet{files: []string{file}},
	}
	if w.Dir != "" {
		s.dir = w.Dir
		if !filepath.IsAbs(s.dir) {
			s.dir = filepath.Join(cfg.Dir, s.dir)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(w.Env)) {
		s.env = append(s.env, k+"="+w.Env[k])
	}
	return s, nil
}
