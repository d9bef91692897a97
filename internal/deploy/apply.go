package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// ErrNoKubectl is returned by Apply when kubectl is not on PATH.
var ErrNoKubectl = errors.New("kubectl not found in PATH: install it (https://kubernetes.io/docs/tasks/tools/) or write the manifests with --emit-yaml")

// ErrNoCluster is returned by Apply when kubectl cannot reach a cluster.
var ErrNoCluster = errors.New("no Kubernetes cluster reachable")

// Apply pipes the manifests to `kubectl apply --server-side -f -`, with
// metro as field manager, so that fields metro sets are owned by metro and
// fields others set (an autoscaler's replicas) are left alone. kubectl's
// output goes to stdout and stderr; the error says what failed.
func Apply(ctx context.Context, ms []Manifest, stdout, stderr io.Writer) error {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		return ErrNoKubectl
	}
	cmd := exec.CommandContext(ctx, kubectl, "apply", "--server-side", "--field-manager=metro", "-f", "-")
	cmd.Stdin = bytes.NewReader(YAML(ms))
	cmd.Stdout = stdout
	var tail lastLines
	cmd.Stderr = io.MultiWriter(stderr, &tail)
	// kubectl may start helpers (credential plugins); on cancel, stop the
	// whole group, and reap it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("kubectl apply: %w", ctx.Err())
		}
		msg := strings.TrimSpace(tail.String())
		if unreachable(msg) {
			return fmt.Errorf("kubectl apply: %w (check `kubectl config current-context`): %s", ErrNoCluster, msg)
		}
		if msg != "" {
			return fmt.Errorf("kubectl apply: %w: %s", err, msg)
		}
		return fmt.Errorf("kubectl apply: %w", err)
	}
	return nil
}

// unreachable recognises kubectl's ways of saying there is no cluster.
func unreachable(msg string) bool {
	for _, s := range []string{
		"Unable to connect to the server",
		"connection refused",
		"no such host",
		"i/o timeout",
		"the server could not find the requested resource",
		"no configuration has been provided",
		"current-context is not set",
		"dial tcp",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// lastLines keeps the last few lines written to it, for an error message.
type lastLines struct{ b []byte }

func (l *lastLines) Write(p []byte) (int, error) {
	l.b = append(l.b, p...)
	if len(l.b) > 4096 {
		l.b = l.b[len(l.b)-4096:]
	}
	return len(p), nil
}

func (l *lastLines) String() string {
	lines := strings.Split(strings.TrimSpace(string(l.b)), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, "; ")
}
