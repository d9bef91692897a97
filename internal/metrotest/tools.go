package metrotest

import (
	"os"
	"os/exec"
	"testing"
)

// NeedTool returns the path of an external program a test needs (node,
// tmux, kubectl). Without it the test cannot run: under CI=true, where
// .ci/run installs every such tool, that is a failure; elsewhere (go test
// ./... with only Go installed) the test is skipped, saying which tool is
// missing and what goes unchecked.
func NeedTool(t testing.TB, tool, unchecked string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed, and CI must check %s (.ci/run installs it)", tool, unchecked)
	}
	t.Skipf("%s is not installed: %s is not checked (under CI=true this fails)", tool, unchecked)
	return ""
}
