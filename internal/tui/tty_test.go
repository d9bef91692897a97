package tui

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
)

// binDir holds the metro binary the tests build; TestMain removes it.
var binDir string

var build struct {
	once sync.Once
	bin  string
	err  error
	out  []byte
}

// buildMetro builds the real binary, once for all tests of the run.
func buildMetro(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		build.bin = filepath.Join(binDir, "metro")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		build.out, build.err = exec.CommandContext(ctx, "go", "build", "-o", build.bin, "github.com/metropolis-dev/metro/cmd/metro").CombinedOutput()
	})
	if build.err != nil {
		t.Fatalf("building metro: %v\n%s", build.err, build.out)
	}
	return build.bin
}

// tmux drives one program in a private tmux server: a real terminal
// emulator, so the test reads the screen as a user would see it.
type tmux struct {
	t    *testing.T
	sock string
}

func (x *tmux) run(args ...string) string {
	x.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", x.sock}, args...)...).CombinedOutput()
	if err != nil {
		x.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (x *tmux) screen() string { return x.run("capture-pane", "-p", "-t", "tap") }

// waitScreen polls the screen until ok accepts it.
func (x *tmux) waitScreen(what string, ok func(string) bool) string {
	x.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := x.screen()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("screen never showed %s; last screen:\n%s", what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTTY(t *testing.T) {
	metrotest.NeedTool(t, "tmux", "metro tap in a real terminal")
	bin := buildMetro(t)
	s := natstest.Run(t)
	worker, client := natstest.Connect(t, s), natstest.Connect(t, s)
	_, err := worker.QueueSubscribe(">", "shop", func(m *nats.Msg) {
		r := nats.NewMsg(m.Reply)
		if strings.HasPrefix(m.Subject, "orders.9") {
			r.Header.Set("Metro-Status", "404")
		}
		r.Data = []byte(`{"ok":true}`)
		_ = m.RespondMsg(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := worker.Flush(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	conf := filepath.Join(dir, "tmux.conf")
	// The pane stays after metro exits, so the screen it leaves can be read.
	if err := os.WriteFile(conf, []byte("set -g remain-on-exit on\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A shell runs metro and writes its exit status: tmux's own record of
	// it (pane_dead_status) proved unreliable on a loaded machine.
	statusFile := filepath.Join(dir, "status")
	x := &tmux{t: t, sock: filepath.Join(dir, "tmux.sock")}
	x.run("-f", conf, "new-session", "-d", "-s", "tap", "-x", "110", "-y", "24",
		"-e", "NATS_URL="+s.ClientURL(), "-e", "TERM=xterm-256color", "-e", "NO_COLOR=",
		"sh", "-c", `"$0" tap; echo $? > "$1"`, bin, statusFile)
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", x.sock, "kill-server").Run() })

	x.waitScreen("the empty table", func(s string) bool { return strings.Contains(s, "waiting for requests") })
	for _, subj := range []string{"users.1.GET", "orders.POST", "orders.9.GET"} {
		if _, err := client.Request(subj, []byte("{}"), 5*time.Second); err != nil {
			t.Fatalf("request %s with tap running: %v", subj, err)
		}
	}
	x.waitScreen("three exchanges", func(s string) bool {
		return strings.Contains(s, "3 exchanges") && strings.Contains(s, "/users/1") && strings.Contains(s, "/orders/9")
	})

	x.run("send-keys", "-t", "tap", "-l", "/")
	x.waitScreen("the filter prompt", func(s string) bool { return strings.Contains(s, "subject, path or status") })
	x.run("send-keys", "-t", "tap", "-l", "orders")
	x.run("send-keys", "-t", "tap", "Enter")
	screen := x.waitScreen("the applied filter", func(s string) bool { return strings.Contains(s, "filter: orders  (2 of 3 rows)") })
	for _, want := range []string{"POST    /orders", "GET     /orders/9", "404"} {
		if !strings.Contains(screen, want) {
			t.Errorf("filtered screen lacks %q:\n%s", want, screen)
		}
	}
	if strings.Contains(screen, "/users/1") {
		t.Errorf("filtered screen still shows /users/1:\n%s", screen)
	}

	x.run("send-keys", "-t", "tap", "-l", "q")
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(statusFile)
		if status := strings.TrimSpace(string(b)); status != "" {
			if status != "0" {
				t.Fatalf("metro tap exited %s on q\n%s", status, x.screen())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metro tap did not exit on q\n%s", x.screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The alternate screen is gone: the table is not left on the terminal.
	if s := x.screen(); strings.Contains(s, "exchanges") {
		t.Errorf("the table is left on the terminal after quitting:\n%s", s)
	}
}
