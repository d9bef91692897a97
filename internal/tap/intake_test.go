package tap

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nkeys"

	"github.com/metropolis-dev/metro/internal/devstate"
	"github.com/metropolis-dev/metro/internal/natstest"
)

func TestSubscriptions(t *testing.T) {
	tests := []struct {
		prefix    string
		args      []string
		want      []string
		metroOnly bool
		err       bool
	}{
		{"", nil, []string{">"}, true, false},
		{"api", nil, []string{"api.>", "_INBOX.>", "$METRO.STREAM.>"}, true, false},
		{"", []string{"users.>"}, []string{"users.>", "_INBOX.>", "$METRO.STREAM.>"}, false, false},
		{"", []string{"GET /users/{id}"}, []string{"users.*.GET", "_INBOX.>", "$METRO.STREAM.>"}, false, false},
		{"api", []string{"/files/{p...}"}, []string{"api.files.>", "_INBOX.>", "$METRO.STREAM.>"}, false, false},
		{"", []string{"a.GET", "a.GET", "GET /a"}, []string{"a.GET", "_INBOX.>", "$METRO.STREAM.>"}, false, false},
		{"", []string{">"}, []string{">"}, false, false},
		{"", []string{"a.GET", "$METRO.STREAM.>"}, []string{"a.GET", "$METRO.STREAM.>", "_INBOX.>"}, false, false},
		{"", []string{"foo..bar"}, nil, false, true},
		{"", []string{"a.>.b"}, nil, false, true},
		{"", []string{"a.b*"}, nil, false, true},
		{"", []string{"GET /x/{bad"}, nil, false, true},
		{"", []string{"/{rest...}"}, nil, false, true}, // every subject: refused by the codec
	}
	for _, tt := range tests {
		got, metroOnly, err := Subscriptions(tt.prefix, tt.args)
		if tt.err {
			if !errors.Is(err, ErrBadSubject) {
				t.Errorf("Subscriptions(%q, %q): err %v, want ErrBadSubject", tt.prefix, tt.args, err)
			}
			continue
		}
		if err != nil || metroOnly != tt.metroOnly || !equal(got, tt.want) {
			t.Errorf("Subscriptions(%q, %q) = %q %v %v, want %q %v", tt.prefix, tt.args, got, metroOnly, err, tt.want, tt.metroOnly)
		}
	}
}

func FuzzSubscriptions(f *testing.F) {
	for _, s := range []string{"users.>", "GET /users/{id}", "a..b", "/x/{p...}", "*", "_INBOX.x"} {
		f.Add("", s)
		f.Add("api", s)
	}
	f.Fuzz(func(t *testing.T, prefix, arg string) {
		subs, _, err := Subscriptions(prefix, []string{arg})
		if err != nil {
			return
		}
		for _, s := range subs {
			if s != arg && validSubject(s) != nil && prefix == "" {
				t.Fatalf("%q mapped to invalid subject %q", arg, s)
			}
		}
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestResolve(t *testing.T) {
	dev := t.TempDir()
	if err := devstate.Write(dev, devstate.State{NATSURL: "nats://127.0.0.1:4999", Prefix: "api"}); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dev, "workers", "x")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		want Target
		err  error
	}{
		{"flag wins", Options{Server: "nats://a:1", EnvURL: "nats://b:2", Dir: sub}, Target{URL: "nats://a:1", From: "--server"}, nil},
		{"then NATS_URL", Options{EnvURL: "nats://b:2", Dir: sub}, Target{URL: "nats://b:2", From: "NATS_URL"}, nil},
		{"then metro dev, with its prefix", Options{Dir: sub}, Target{URL: "nats://127.0.0.1:4999", Prefix: "api", From: devstate.RelPath}, nil},
		{"a given prefix beats metro dev's", Options{Dir: sub, Prefix: "", PrefixSet: true}, Target{URL: "nats://127.0.0.1:4999", From: devstate.RelPath}, nil},
		{"none", Options{Dir: t.TempDir()}, Target{}, ErrNoServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.opts)
			if !errors.Is(err, tt.err) || err == nil && got != tt.want {
				t.Fatalf("Resolve = %+v, %v; want %+v, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// responder answers requests on subj as a worker in queue group q would,
// with the status and body of the request's "X-Want" header.
func responder(t *testing.T, nc *nats.Conn, subj string) {
	t.Helper()
	_, err := nc.QueueSubscribe(subj, "workers", func(m *nats.Msg) {
		r := nats.NewMsg(m.Reply)
		if s := m.Header.Get("X-Want"); s != "" {
			r.Header.Set("Metro-Status", s)
		}
		if m.Header.Get("X-Silent") != "" {
			return
		}
		r.Data = []byte(`{"ok":true}`)
		_ = m.RespondMsg(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestIntakeLive runs the intake against a real server: a worker answers,
// a client requests, tap only watches. The client's answers must be the
// same with tap listening, and tap must see each exchange.
func TestIntakeLive(t *testing.T) {
	s := natstest.Run(t)
	worker, client, tapConn := natstest.Connect(t, s), natstest.Connect(t, s), natstest.Connect(t, s)
	responder(t, worker, "users.*.GET")

	in, err := Subscribe(tapConn, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := runIntake(t, in, 16)

	call := func(path, status string, deadline time.Duration, silent bool) (*nats.Msg, error) {
		m := nats.NewMsg(path)
		m.Header.Set("Metro-Deadline", strconv.FormatInt(time.Now().Add(deadline).UnixMilli(), 10))
		if status != "" {
			m.Header.Set("X-Want", status)
		}
		if silent {
			m.Header.Set("X-Silent", "1")
		}
		return client.RequestMsg(m, deadline)
	}
	tests := []struct {
		name     string
		subj     string
		status   string
		silent   bool
		outcome  Outcome
		want     int
		clientOK bool
	}{
		{"200", "users.1.GET", "", false, OK, 200, true},
		{"404 from the worker", "users.2.GET", "404", false, OK, 404, true},
		{"no reply", "users.3.GET", "", true, Timeout, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply, err := call(tt.subj, tt.status, 300*time.Millisecond, tt.silent)
			if tt.clientOK && (err != nil || len(reply.Data) == 0) {
				t.Fatalf("client got %v, %v with tap listening", reply, err)
			}
			if !tt.clientOK && !errors.Is(err, nats.ErrTimeout) {
				t.Fatalf("client got %v, want a timeout", err)
			}
			select {
			case ex := <-got:
				if ex.Subject != tt.subj || ex.Outcome != tt.outcome || ex.Status != tt.want || ex.Method != "GET" {
					t.Fatalf("exchange %s %s %v %d, want %s %v %d", ex.Method, ex.Subject, ex.Outcome, ex.Status, tt.subj, tt.outcome, tt.want)
				}
				if ex.Outcome == OK && (ex.Latency <= 0 || ex.Response.Size != len(`{"ok":true}`)) {
					t.Fatalf("latency %v reply size %d", ex.Latency, ex.Response.Size)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("tap saw no exchange")
			}
		})
	}

	// Tap never answers: a request nobody else listens to would get a
	// reply from tap if it did. Tap's subscription is interest, so NATS
	// reports no "no responders"; the requester just times out.
	if _, err := client.Request("nobody.GET", nil, 200*time.Millisecond); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("request to a subject only tap watches: %v, want a timeout", err)
	}
}

func TestWriteNDJSON(t *testing.T) {
	s := natstest.Run(t)
	worker, client, tapConn := natstest.Connect(t, s), natstest.Connect(t, s), natstest.Connect(t, s)
	responder(t, worker, "api.orders.>")
	in, err := Subscribe(tapConn, "api", []string{"POST /orders"})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- WriteNDJSON(t.Context(), in, pw, 2)
		pw.Close()
	}()
	for i, status := range []string{"201", "500"} {
		m := nats.NewMsg("api.orders.POST")
		m.Header.Set("X-Want", status)
		m.Header.Set("Metro-Request-Id", "req-"+strconv.Itoa(i))
		m.Header.Set("Metro-Query", "dry=1")
		m.Data = []byte(`{"sku":"a"}`)
		if _, err := client.RequestMsg(m, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	sc := bufio.NewScanner(pr)
	var recs []map[string]any
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2 (--count)", len(recs))
	}
	for i, r := range recs {
		want := map[string]any{
			"subject": "api.orders.POST", "method": "POST", "path": "/orders", "query": "dry=1",
			"status": []float64{201, 500}[i], "request_bytes": float64(11), "reply_bytes": float64(11),
			"request_id": "req-" + strconv.Itoa(i), "outcome": "ok",
		}
		for k, v := range want {
			if r[k] != v {
				t.Errorf("record %d: %s = %v, want %v", i, k, r[k], v)
			}
		}
		if lat, _ := r["latency_ms"].(float64); lat <= 0 {
			t.Errorf("record %d: latency_ms %v", i, r["latency_ms"])
		}
		if ts, _ := r["time"].(string); ts == "" {
			t.Errorf("record %d: no time", i)
		}
	}
}

// TestConnectNKey: tap authenticates with an nkey seed file as the
// gateway does, and fails clearly without it.
func TestConnectNKey(t *testing.T) {
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := user.PublicKey()
	seed, _ := user.Seed()
	s := natstest.RunWith(t, &server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}})
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	target := Target{URL: s.ClientURL(), From: "--server"}
	nc, err := Connect(Options{NKey: seedFile}, target)
	if err != nil {
		t.Fatalf("with the seed: %v", err)
	}
	nc.Close()
	if _, err := Connect(Options{}, target); err == nil {
		t.Fatal("connected without credentials to a server that requires them")
	}
	if _, err := Connect(Options{NKey: filepath.Join(t.TempDir(), "missing.nk")}, target); err == nil {
		t.Fatal("connected with a missing seed file")
	}
}

// TestIntakeNamesWorker: a NATS micro service (what every metro worker
// registers) announces its endpoints; tap names it as the worker of the
// requests its routes cover.
func TestIntakeNamesWorker(t *testing.T) {
	s := natstest.Run(t)
	workerConn, client, tapConn := natstest.Connect(t, s), natstest.Connect(t, s), natstest.Connect(t, s)
	svc, err := micro.AddService(workerConn, micro.Config{Name: "users", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	err = svc.AddEndpoint("get", micro.HandlerFunc(func(r micro.Request) { _ = r.Respond([]byte("{}")) }), micro.WithEndpointSubject("users.*.GET"))
	if err != nil {
		t.Fatal(err)
	}
	if err := workerConn.Flush(); err != nil {
		t.Fatal(err)
	}
	in, err := Subscribe(tapConn, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := runIntake(t, in, 64)
	// Discovery runs beside intake, so the first requests may be seen
	// before the announcement is: ask until one is named.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := client.Request("users.1.GET", nil, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		ex := <-got
		if ex.Worker == "users" {
			break
		}
		if ex.Worker != "" || time.Now().After(deadline) {
			t.Fatalf("worker %q, want users", ex.Worker)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runIntake runs in until the test ends and returns the finished
// exchanges it reports (pending ones are left out).
func runIntake(t *testing.T, in *Intake, buffer int) <-chan Exchange {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan Exchange, buffer)
	done := make(chan error, 1)
	go func() {
		done <- in.Run(ctx, func(ex Exchange) {
			if ex.Outcome != Pending {
				got <- ex
			}
		}, nil)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return got
}
