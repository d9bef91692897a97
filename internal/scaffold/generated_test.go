package scaffold

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natsauth"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/subject"
)

// run runs a command in dir and fails the test with its output if it
// fails.
func run(t *testing.T, dir string, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v in %s: %v\n%s%s", name, args, dir, err, out, stderr.Bytes())
	}
	return out
}

// The generated Go code compiles, passes vet and its own tests, against
// this very source tree, with routes of every shape.
func TestGeneratedGoProjectBuilds(t *testing.T) {
	metrotest.NeedTool(t, "go", "the generated Go project")
	base := t.TempDir()
	var tidyOut bytes.Buffer
	res, err := Init(context.Background(), InitOptions{Dir: base, Name: "shop", MetroSrc: repoRoot(t), Tidy: true, Stderr: &tidyOut})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) > 0 {
		t.Fatalf("init warned: %v\n%s", res.Warnings, tidyOut.Bytes())
	}
	dir := filepath.Join(base, "shop")
	routes := []string{"POST /invoices", "GET /invoices/{id}/lines/{line_no}", "/files/{path...}", "DELETE /user-profiles/{id}", "GET /{$}", "GET /a%20b/caf%C3%A9", "GET /static/"}
	if _, err := AddWorker(context.Background(), WorkerOptions{Dir: dir, Name: "billing", Routes: routes}); err != nil {
		t.Fatal(err)
	}
	run(t, dir, nil, "go", "vet", "./...")
	out := run(t, dir, nil, "go", "test", "-count=1", "-v", "./...")
	for _, want := range []string{"--- PASS: TestHandlers/GET_/hello/ada", "--- PASS: TestHandlers/GET_/invoices/42/lines/ada", "--- PASS: TestUnknownPath", "--- PASS: TestRecorded/recorded.ndjson:2_GET_/hello/ada", "--- PASS: TestRecorded/recorded.ndjson:2_GET_/invoices/42/lines/ada"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("go test output lacks %q:\n%s", want, out)
		}
	}
}

// The Node worker, installed once, checked two ways.
func TestNodeWorker(t *testing.T) {
	for _, tool := range []string{"node", "npm"} {
		metrotest.NeedTool(t, tool, "the Node worker")
	}
	dir, _ := newProject(t, InitOptions{})
	var npmOut bytes.Buffer
	res, err := AddWorker(t.Context(), WorkerOptions{
		Dir: dir, Name: "notify", Lang: LangNode, Install: true, Stderr: &npmOut,
		Routes: []string{"GET /notify/{id}", "POST /notify", "/notify/{id}/files/{rest...}"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) > 0 || res.Next[0] != "(cd workers/notify && npm test)" {
		t.Fatalf("npm install: warnings %v, next %q\n%s", res.Warnings, res.Next, npmOut.Bytes())
	}
	wd := filepath.Join(dir, "workers", "notify")
	t.Run("codec", func(t *testing.T) { testNodeCodec(t, wd) })
	t.Run("nats", func(t *testing.T) { testNodeOnNATS(t, wd) })
	t.Run("node test", func(t *testing.T) { testNodeUnits(t, wd) })
	t.Run("streams", func(t *testing.T) { testNodeStreams(t, wd) })
	t.Run("gateway", func(t *testing.T) { testNodeThroughGateway(t, wd) })
}

// A Node worker on a real NATS server: announced with metro metadata and
// its name as queue group, answering by PROTOCOL.md, draining on SIGTERM.
func testNodeOnNATS(t *testing.T, wd string) {
	// A locked bus, as metro dev runs one: the worker connects with the
	// seed it is handed, the test as the tools do.
	s := natstest.Locked(t, natsauth.Project{Prefix: "api", Workers: []natsauth.Worker{{Name: "notify"}}})
	nc := s.Connect(t, string(natsauth.RoleTools))
	// Version 2 and on: the worker says hello and goodbye.
	up, err := nc.SubscribeSync(discovery.UpSubject)
	if err != nil {
		t.Fatal(err)
	}
	down, err := nc.SubscribeSync(discovery.DownSubject)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "index.js")
	cmd.Dir = wd
	cmd.Env = append(os.Environ(), "NATS_URL="+s.ClientURL(), "METRO_PREFIX=api", "METRO_HEALTH_ADDR=", "NATS_NKEY="+s.Seed(natsauth.WorkerID("notify")))
	var logs metrotest.LockedBuffer
	cmd.Stderr = &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("worker stderr:\n%s", logs.String())
		}
	})

	// Announced, with every route the gateway can route.
	var svc discovery.Service
	for deadline := time.Now().Add(30 * time.Second); ; {
		svcs, err := discovery.Collect(t.Context(), nc, "api", 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(svcs) == 1 {
			svc = svcs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no service announced within 30s: %+v", svcs)
		}
	}
	wantRoutes := []discovery.Route{
		{Method: "GET", Pattern: "GET /notify/{id}", Subject: "api.notify.*.GET"},
		{Method: "POST", Pattern: "POST /notify", Subject: "api.notify.POST"},
		{Method: "", Pattern: "/notify/{id}/files/{rest...}", Subject: "api.notify.*.files.>"},
	}
	if svc.Name != "notify" || !reflect.DeepEqual(svc.Routes, wantRoutes) || svc.Protocol != "3" {
		t.Errorf("announced %+v, want notify of protocol 3 with %+v", svc, wantRoutes)
	}
	hello := announced(t, up)
	if hello.Name != "notify" || hello.ID != svc.ID || len(hello.Endpoints) != len(wantRoutes) {
		t.Errorf("said hello as %+v, want the info of %s", hello, svc.ID)
	}
	msg, err := nc.Request("$SRV.INFO.notify", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatal(err)
	}
	for _, ep := range info.Endpoints {
		if ep.QueueGroup != "notify" {
			t.Errorf("endpoint %s in queue group %q, want notify", ep.Name, ep.QueueGroup)
		}
	}

	tests := []struct {
		subject, path string
		body          string
		status        string
		want          string
	}{
		{"api.notify.7.GET", "/notify/7", "", "200", `{"worker":"notify","route":"GET /notify/{id}","params":{"id":"7"}}`},
		{"api.notify.POST", "/notify", "hi", "200", `{"worker":"notify","route":"POST /notify","params":{}}`},
		{"api.notify.7.files.a.b%20c.PUT", "/notify/7/files/a/b%20c", "", "200", `{"worker":"notify","route":"/notify/{id}/files/{rest...}","params":{"id":"7","rest":"a/b c"}}`},
	}
	for _, tt := range tests {
		req := nats.NewMsg(tt.subject)
		req.Header.Set("Metro-Method", tt.subject[strings.LastIndexByte(tt.subject, '.')+1:])
		req.Header.Set("Metro-Path", tt.path)
		req.Header.Set("Metro-Request-Id", "r-1")
		req.Header.Set("Metro-Deadline", fmt.Sprint(time.Now().Add(time.Minute).UnixMilli()))
		req.Data = []byte(tt.body)
		reply, err := nc.RequestMsg(req, 10*time.Second)
		if err != nil {
			t.Errorf("%s: %v", tt.subject, err)
			continue
		}
		if got := reply.Header.Get("Metro-Status"); got != tt.status {
			t.Errorf("%s: Metro-Status %q, want %s", tt.subject, got, tt.status)
		}
		if got := reply.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("%s: Content-Type %q", tt.subject, got)
		}
		if string(reply.Data) != tt.want {
			t.Errorf("%s: body %s, want %s", tt.subject, reply.Data, tt.want)
		}
	}

	// SIGTERM: the worker drains and exits by itself, with status 0.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Errorf("worker exited with %v after SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("worker still running 20s after SIGTERM")
	}
	if !strings.Contains(logs.String(), `"msg":"draining"`) {
		t.Errorf("no drain in the worker's log:\n%s", logs.String())
	}
	if bye := announced(t, down); bye.ID != svc.ID {
		t.Errorf("said goodbye as %+v, want %s", bye, svc.ID)
	}
}

// announced reads the next announcement on sub: a $SRV.INFO reply.
func announced(t *testing.T, sub *nats.Subscription) micro.Info {
	t.Helper()
	msg, err := sub.NextMsg(20 * time.Second)
	if err != nil {
		t.Fatalf("no announcement on %s: %v", sub.Subject, err)
	}
	var info micro.Info
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatalf("announcement %s: %v", msg.Data, err)
	}
	return info
}

// protocol.js holds its own copy of the subject codec (a Node worker uses
// no metro code); it must agree with internal/subject byte for byte.
func testNodeCodec(t *testing.T, wd string) {

	type pc struct{ Pattern, Prefix string }
	type sc struct{ Subject, Prefix string }
	patterns := []pc{}
	for _, p := range []string{
		"GET /users/{id}", "POST /orders", "/files/{path...}", "GET /files/", "GET /", "GET /{$}",
		"GET /a%20b/caf%C3%A9", "GET /a.b/*/>/$x", "PUT /x/{a}/{b}/y", "GET /_INBOX/x", "GET /_inbox",
		"get /x", "GET x", "GET /a/{b", "GET /{a}/{a}", "GET /a/%2e%2E/b", "GET /a//b", "/{p...}", "DELETE /~_-/{id}/",
	} {
		patterns = append(patterns, pc{p, ""}, pc{p, "api"})
	}
	subjects := []sc{}
	for _, p := range []string{"/", "/users/42", "/a%20b/caf%C3%A9/%E2%9C%93", "/a.b/%2A/%3E", "/x/~_-/%25"} {
		s, err := subject.FromPath("", "GET", p)
		if err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, sc{s, ""}, sc{"api." + s, "api"})
	}
	subjects = append(subjects, sc{"users.%2e.GET", ""}, sc{"users.%41.GET", ""}, sc{"users.42.get", ""}, sc{"users.%2E%2E.GET", ""}, sc{"x.GET", "api"})
	segments := []string{"plain", "a b", "a.b", "*", ">", "$SYS", "%", "é", "✓", "~_-", "tab\there", "😀"}

	in, err := json.Marshal(map[string]any{"patterns": patterns, "subjects": subjects, "segments": segments})
	if err != nil {
		t.Fatal(err)
	}
	script := `
import { readFileSync } from "node:fs";
import { parsePattern, parseSubject, subscription, token } from "./protocol.js";
const input = JSON.parse(readFileSync(0, "utf8"));
const attempt = (f) => { try { return f(); } catch { return null; } };
console.log(JSON.stringify({
  subs: input.patterns.map((c) => attempt(() => subscription(parsePattern(c.Pattern), c.Prefix))),
  parsed: input.subjects.map((c) => attempt(() => parseSubject(c.Subject, c.Prefix))),
  tokens: input.segments.map(token),
}));`
	out := run(t, wd, in, "node", "--input-type=module", "-e", script)
	var got struct {
		Subs   []*string
		Parsed []*struct {
			Method   string
			Segments []string
		}
		Tokens []string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("decoding %s: %v", out, err)
	}
	for i, c := range patterns {
		var want *string
		if r, err := subject.ParsePattern(c.Pattern); err == nil {
			if s, err := r.Subscription(c.Prefix); err == nil {
				want = &s
			}
		}
		if !reflect.DeepEqual(got.Subs[i], want) {
			t.Errorf("pattern %q prefix %q: node %v, go %v", c.Pattern, c.Prefix, deref(got.Subs[i]), deref(want))
		}
	}
	for i, c := range subjects {
		m, segs, err := subject.Parse(c.Prefix, c.Subject)
		g := got.Parsed[i]
		switch {
		case err != nil && g != nil:
			t.Errorf("subject %q: node parsed %+v, go refused: %v", c.Subject, *g, err)
		case err == nil && g == nil:
			t.Errorf("subject %q: node refused, go parsed %s %q", c.Subject, m, segs)
		case err == nil && (g.Method != m || !reflect.DeepEqual(g.Segments, segs)):
			t.Errorf("subject %q: node %s %q, go %s %q", c.Subject, g.Method, g.Segments, m, segs)
		}
	}
	for i, s := range segments {
		if want := subject.Token(s); got.Tokens[i] != want {
			t.Errorf("token(%q): node %q, go %q", s, got.Tokens[i], want)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "<refused>"
	}
	return *s
}
