package devserver

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/devstate"
)

// TestDevRefusesSecondInProject: a second metro dev in the same project
// refuses to start, naming the first one's pid, and leaves the first's
// dev.json in place (it would otherwise overwrite it, then delete it on
// its way out while the first still runs).
func TestDevRefusesSecondInProject(t *testing.T) {
	t.Parallel()
	dir := writeProject(t, map[string]string{
		"metro.yaml": `name: twice
gateway:
  listen: "127.0.0.1:0"
  admin: ""
nats:
  port: 0
workers:
  idle:
    run: exec sleep 1000
`,
	})
	first := startDev(t, dir, "DEVSERVER_TEST_READY=200ms")
	st := first.state(t, time.Minute)
	if st.PID != first.cmd.Process.Pid {
		t.Fatalf("dev.json names pid %d, the first metro dev is %d", st.PID, first.cmd.Process.Pid)
	}

	second := startDev(t, dir, "DEVSERVER_TEST_READY=200ms")
	select {
	case <-second.done:
	case <-time.After(time.Minute):
		t.Fatalf("the second metro dev did not stop:\n%s", second.out.String())
	}
	if code := second.cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("the second metro dev exited 0")
	}
	out := strings.TrimSpace(second.out.String())
	want := "pid " + strconv.Itoa(first.cmd.Process.Pid)
	if strings.Count(out, "\n") != 0 || !strings.Contains(out, want) || !strings.Contains(out, "another metro dev") {
		t.Errorf("the second metro dev said %q; want one line naming %q", out, want)
	}
	after := first.state(t, time.Second)
	if after.PID != st.PID || after.NATSURL != st.NATSURL {
		t.Errorf("dev.json changed: %+v, was %+v", after, st)
	}
	if code := first.interrupt(t, 30*time.Second); code != 0 {
		t.Errorf("first metro dev: exit code %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, devstate.RelPath)); !os.IsNotExist(err) {
		t.Errorf("dev.json after the first stopped: %v", err)
	}

	// The lock ends with its holder: a new metro dev starts.
	third := startDev(t, dir, "DEVSERVER_TEST_READY=200ms")
	third.state(t, time.Minute)
	if code := third.interrupt(t, 30*time.Second); code != 0 {
		t.Errorf("third metro dev: exit code %d", code)
	}
}
