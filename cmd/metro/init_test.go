package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/devstate"
	"github.com/metropolis-dev/metro/internal/iostreams"
	"github.com/metropolis-dev/metro/internal/metrotest"
)

// runCLI runs one metro command line in process, as main does.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	code = run(t.Context(), ios, args)
	return code, out.String(), errOut.String()
}

// metroSource is this repository, which generated projects replace the
// metro module with.
func metroSource(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	dir := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	if _, err := os.Stat(filepath.Join(dir, "metro.go")); err != nil {
		t.Fatalf("%s is not the metro source tree: %v", dir, err)
	}
	return dir
}

// snapshot reads every file under dir, to show that a refused command
// wrote nothing.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		m[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameSnapshot(a, b map[string]string) []string {
	var diff []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			diff = append(diff, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			diff = append(diff, k)
		}
	}
	sort.Strings(diff)
	return diff
}

// Misuse exits 2, a broken metro.yaml exits 1, each with one line on
// stderr, and none of them writes anything.
func TestScaffoldRefusals(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	t.Setenv("METRO_SRC", metroSource(t))
	if code, _, stderr := runCLI(t, "init", "shop", "--dry-run"); code != 0 {
		t.Fatalf("init --dry-run: exit %d: %s", code, stderr)
	}
	if ents, _ := os.ReadDir(base); len(ents) != 0 {
		t.Fatalf("init --dry-run wrote %d entries", len(ents))
	}
	// A real project; METRO_SRC stands in for --metro-src.
	ios, _, out, errOut := iostreams.Test()
	if code := run(t.Context(), ios, []string{"init", "shop"}); code != 0 {
		t.Fatalf("init: exit %d: %s%s", code, out, errOut)
	}
	t.Chdir(filepath.Join(base, "shop"))
	yamlPath := filepath.Join(base, "shop", "metro.yaml")
	good, err := os.ReadFile(yamlPath)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		yaml  string // replaces metro.yaml for this case
		args  []string
		code  int
		say   string
		chdir string
	}{
		{name: "bad-name", args: []string{"new", "worker", "Billing"}, code: 2, say: "DNS-1123"},
		{name: "bad-name-dot", args: []string{"new", "worker", "bill.ing"}, code: 2, say: "DNS-1123"},
		{name: "lang", args: []string{"new", "worker", "billing", "--lang", "rust"}, code: 2, say: `unknown language "rust"`},
		{name: "duplicate", args: []string{"new", "worker", "hello"}, code: 2, say: `worker "hello" is already in`},
		{name: "route", args: []string{"new", "worker", "billing", "--route", "GET invoices"}, code: 2, say: "invalid route"},
		{name: "no-name", args: []string{"new", "worker"}, code: 2, say: "accepts 1 arg"},
		{name: "two-names", args: []string{"new", "worker", "a", "b"}, code: 2, say: "accepts 1 arg"},
		{name: "flag", args: []string{"new", "worker", "billing", "--colour"}, code: 2, say: "unknown flag"},
		{name: "new-what", args: []string{"new", "gadget"}, code: 2, say: "gadget"},
		{name: "syntax", yaml: "name: shop\nworkers: [\n", args: []string{"new", "worker", "billing"}, code: 1, say: "metro.yaml"},
		{name: "unknown-key", yaml: string(good) + "colour: blue\n", args: []string{"new", "worker", "billing"}, code: 1, say: "colour"},
		{name: "init-exists", args: []string{"init", "shop"}, code: 2, say: "has files in it", chdir: base},
		{name: "init-bad-name", args: []string{"init", "My_Shop"}, code: 2, say: "DNS-1123", chdir: base},
		{name: "init-no-name", args: []string{"init"}, code: 2, say: "accepts 1 arg", chdir: base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.chdir != "" {
				t.Chdir(tt.chdir)
			}
			y := string(good)
			if tt.yaml != "" {
				y = tt.yaml
			}
			if err := os.WriteFile(yamlPath, []byte(y), 0o644); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, base)
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.say) || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "metro: ") {
				t.Errorf("stderr %q: want one line saying %q", stderr, tt.say)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if d := sameSnapshot(before, snapshot(t, base)); len(d) > 0 {
				t.Errorf("refused command changed %v", d)
			}
		})
	}
}

func runIn(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// From nothing to a running, tested service: metro init, two workers, the
// project's own tests, and metro dev answering through the gateway.
func TestScaffoldEndToEnd(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	code, stdout, stderr := runCLI(t, "init", "shop", "--metro-src", metroSource(t))
	if code != 0 {
		t.Fatalf("metro init: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "created shop/workers/hello/main.go") || !strings.Contains(stdout, "next:\n  cd shop\n") {
		t.Errorf("metro init output:\n%s", stdout)
	}
	dir := filepath.Join(base, "shop")
	t.Chdir(dir)
	for _, args := range [][]string{
		{"new", "worker", "billing", "--route", "GET /invoices/{id}"},
		{"new", "worker", "notify", "--lang", "node"},
	} {
		if code, stdout, stderr := runCLI(t, args...); code != 0 {
			t.Fatalf("metro %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
	runIn(t, dir, "go", "vet", "./...")
	out := runIn(t, dir, "go", "test", "-count=1", "-v", "./...")
	for _, want := range []string{"--- PASS: TestHandlers/GET_/hello/ada", "--- PASS: TestHandlers/GET_/invoices/42"} {
		if !strings.Contains(out, want) {
			t.Errorf("go test output lacks %q:\n%s", want, out)
		}
	}
	node := true
	t.Run("npm", func(t *testing.T) {
		node = false
		for _, tool := range []string{"node", "npm"} {
			metrotest.NeedTool(t, tool, "the Node worker, tested and run")
		}
		node = true
		wd := filepath.Join(dir, "workers", "notify")
		runIn(t, wd, "npm", "install", "--no-audit", "--no-fund", "--loglevel=error")
		if out := runIn(t, wd, "npm", "test"); !strings.Contains(out, "# fail 0") {
			t.Errorf("npm test:\n%s", out)
		}
	})
	if t.Failed() {
		return
	}
	if !node {
		// metro dev would run the Node worker without its node_modules.
		if err := os.RemoveAll(filepath.Join(dir, "workers", "notify")); err != nil {
			t.Fatal(err)
		}
		y, _ := os.ReadFile("metro.yaml")
		os.WriteFile("metro.yaml", []byte(strings.Split(string(y), "  notify:\n")[0]), 0o644)
	}

	// metro dev, in process, on free ports, with no NATS of the
	// environment's.
	t.Setenv("METRO_ADMIN", "127.0.0.1:0")
	t.Setenv("NATS_URL", "")
	devOut := &metrotest.LockedBuffer{}
	ios := &iostreams.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: devOut}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, ios, []string{"dev", "--listen", "127.0.0.1:0", "--nats-port", "0"}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("metro dev did not stop")
		}
		if t.Failed() {
			t.Logf("metro dev output:\n%s", devOut.String())
		}
	})
	var st devstate.State
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var err error
		if st, err = devstate.Find(dir); err == nil && st.GatewayURL != "" {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("metro dev exited with %d before it was ready", code)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("metro dev not ready after 3 minutes")
		}
	}

	type reply struct {
		Worker string            `json:"worker"`
		Route  string            `json:"route"`
		Params map[string]string `json:"params"`
	}
	tests := []struct {
		path string
		want reply
	}{
		{"/hello", reply{Worker: "hello", Route: "GET /hello"}},
		{"/hello/ada", reply{Worker: "hello", Route: "GET /hello/{name}", Params: map[string]string{"name": "ada"}}},
		{"/invoices/42", reply{Worker: "billing", Route: "GET /invoices/{id}", Params: map[string]string{"id": "42"}}},
	}
	if node {
		tests = append(tests, struct {
			path string
			want reply
		}{"/notify", reply{Worker: "notify", Route: "GET /notify", Params: map[string]string{}}})
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, tt := range tests {
		// A worker's route reaches the table within a second of its
		// announcement; poll rather than guess when that is.
		var got reply
		var last string
		for end := time.Now().Add(30 * time.Second); ; {
			resp, err := client.Get(st.GatewayURL + tt.path)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				last = resp.Status + " " + string(b)
				if resp.StatusCode == http.StatusOK {
					if err := json.Unmarshal(b, &got); err != nil {
						t.Fatalf("GET %s: %v in %s", tt.path, err, b)
					}
					break
				}
			} else {
				last = err.Error()
			}
			if time.Now().After(end) {
				t.Fatalf("GET %s: no 200 within 30s; last: %s", tt.path, last)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got.Worker != tt.want.Worker || got.Route != tt.want.Route || len(got.Params) != len(tt.want.Params) || got.Params["id"] != tt.want.Params["id"] || got.Params["name"] != tt.want.Params["name"] {
			t.Errorf("GET %s = %+v, want %+v", tt.path, got, tt.want)
		}
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		t.Fatal("metro dev stopped early")
	}
}
