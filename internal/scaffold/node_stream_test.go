package scaffold

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
)

// streamsJS is a worker with routes that exercise PROTOCOL.md section 9:
// a download written in chunks, server-sent events that wait for the
// test's word before each next event, an upload read as it is pulled, a
// feed that runs until cancelled, and a reply that breaks mid-stream.
const streamsJS = `
import { createHash } from "node:crypto";
import { json, serve } from "./protocol.js";

// pattern is byte i of every test body, so that any part out of place shows.
const pattern = (from, n) => Uint8Array.from({ length: n }, (_, i) => ((from + i) * 7 + ((from + i) >> 12)) & 255);

let nextEvent = null;
const feed = { cancelled: [] };

export const routes = [
  { pattern: "GET /download/{n}", handler: async (req, res) => {
    const n = Number(req.params.n);
    res.writeHead(200, { "Content-Type": "application/octet-stream" });
    for (let at = 0; at < n; at += 10000) await res.write(pattern(at, Math.min(10000, n - at)));
  } },
  { pattern: "GET /events", handler: async (req, res) => {
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    for (let i = 0; i < 5; i++) {
      if (i > 0) await new Promise((resolve) => (nextEvent = resolve));
      await res.write("data: " + i + "\n\n");
      await res.flush();
    }
  } },
  { pattern: "POST /events/next", handler: async () => {
    if (!nextEvent) return json(409, { error: "no event is waiting" });
    nextEvent();
    nextEvent = null;
    return json(200, {});
  } },
  { pattern: "PUT /upload", handler: async (req) => {
    const hash = createHash("sha256");
    let bytes = 0;
    try {
      for await (const chunk of req.stream) {
        hash.update(chunk);
        bytes += chunk.length;
      }
    } catch (err) {
      return json(400, { error: err.message });
    }
    return json(200, { sha256: hash.digest("hex"), bytes, streamed: req.streamed, length: req.header("Content-Length") });
  } },
  { pattern: "POST /json", handler: async (req) => json(200, { items: req.json().length, streamed: req.streamed }) },
  { pattern: "GET /feed", handler: async (req, res) => {
    try {
      for (let i = 0; ; i++) {
        await res.write("tick " + i + "\n");
        await res.flush();
      }
    } catch (err) {
      feed.cancelled.push({ aborted: req.signal.aborted, reason: String(req.signal.reason?.message ?? req.signal.reason) });
    }
  } },
  { pattern: "GET /feed/status", handler: async () => json(200, feed) },
  { pattern: "GET /half", handler: async (req, res) => {
    await res.write(pattern(0, 100000));
    await res.flush();
    throw new Error("lost the database");
  } },
];

await serve({ name: "streams", routes });
`

// streamServer is a real nats-server with a small max_payload, so that
// parts are a quarter of it (32 KiB) rather than 64 KiB.
const streamMaxPayload = 128 * 1024

// testNodeStreams runs streamsJS beside the generated worker and speaks
// section 9 to it over a real server: this test is the gateway's side,
// reader of replies and holder of request bodies.
func testNodeStreams(t *testing.T, wd string) {
	s := natstest.RunWith(t, &server.Options{MaxPayload: streamMaxPayload})
	nc := natstest.Connect(t, s)
	startNode(t, wd, "streams.js", "NATS_URL="+s.ClientURL(), "METRO_HEALTH_ADDR=")
	waitService(t, nc, "streams", "3")

	t.Run("download", func(t *testing.T) {
		const n = 5<<20 + 123
		first := request(t, nc, "download.5243003.GET", nil, true)
		if first.Header.Get("Metro-Status") != "200" || first.Header.Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("start of the reply: %v", first.Header)
		}
		got, parts, err := readStream(t, nc, first, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := testPattern(0, n); !bytes.Equal(got, want) {
			t.Fatalf("body of %d bytes differs from the %d written (first difference at %d)", len(got), len(want), firstDiff(got, want))
		}
		if parts < n/(32<<10) {
			t.Errorf("%d parts for %d bytes: some part was larger than 32 KiB", parts, n)
		}
	})

	t.Run("version 2 caller", func(t *testing.T) {
		small := request(t, nc, "download.1000.GET", nil, false)
		if small.Header.Get("Metro-Stream") != "" || !bytes.Equal(small.Data, testPattern(0, 1000)) {
			t.Errorf("a small reply to a version-2 caller is not one whole message: %v, %d bytes", small.Header, len(small.Data))
		}
		big := request(t, nc, "download.5243003.GET", nil, false)
		var p struct {
			Status int
			Detail string
		}
		if err := json.Unmarshal(big.Data, &p); err != nil || big.Header.Get("Metro-Status") != "502" || p.Status != 502 || big.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("a reply over max_payload to a version-2 caller: %v %s (%v)", big.Header, big.Data, err)
		}
	})

	t.Run("events one by one", func(t *testing.T) {
		first := request(t, nc, "events.GET", nil, true)
		if first.Header.Get("Content-Type") != "text/event-stream" || string(first.Data) != "data: 0\n\n" {
			t.Fatalf("first event: %v %q", first.Header, first.Data)
		}
		// The handler writes event k+1 only when told, and the test tells
		// it only once event k has arrived: so each event arrived before
		// the next was written. The handler answers 409 when it is not
		// waiting, so a telling it does not need shows too.
		next := func() {
			if r := request(t, nc, "events.next.POST", nil, false); r.Header.Get("Metro-Status") != "200" {
				t.Errorf("next event: %v %s", r.Header, r.Data)
			}
		}
		next()
		k := 0
		_, _, err := readStream(t, nc, first, func(part []byte) {
			k++
			if want := fmt.Sprintf("data: %d\n\n", k); string(part) != want {
				t.Errorf("part %d is %q, want %q", k, part, want)
			}
			if k < 4 {
				next()
			}
		})
		if err != nil || k != 4 {
			t.Fatalf("after %d events: %v", k, err)
		}
	})

	t.Run("upload", func(t *testing.T) {
		body := testPattern(0, 3<<20+77)
		h := &holder{body: body, first: 1000, waitPing: true}
		reply := h.request(t, nc, "upload.PUT")
		var got struct {
			Sha256   string
			Bytes    int
			Streamed bool
			Length   string
		}
		if err := json.Unmarshal(reply.Data, &got); err != nil || reply.Header.Get("Metro-Status") != "200" {
			t.Fatalf("upload: %v %s", reply.Header, reply.Data)
		}
		sum := sha256.Sum256(body)
		if got.Sha256 != hex.EncodeToString(sum[:]) || got.Bytes != len(body) || !got.Streamed || got.Length != strconv.Itoa(len(body)) {
			t.Errorf("the handler read %+v, want %d bytes with sha256 %x", got, len(body), sum)
		}
		// The reader pulled before it pinged, on one connection: at the
		// ping, its whole window was in flight.
		if h.pendingAtPing != 8 || h.maxPending != 8 {
			t.Errorf("the reader had %d pulls in flight when it pinged (%d at most), want 8", h.pendingAtPing, h.maxPending)
		}
		if !h.pinged {
			t.Error("the reader waited and never pinged")
		}
	})

	t.Run("upload broken", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			h    *holder
			want string
			canc bool
		}{
			{"gap", &holder{body: testPattern(0, 1<<20), skipPart: 3}, "part 4 came where 3 was due", true},
			{"error", &holder{body: testPattern(0, 1<<20), failAt: 2}, "the client went away", true},
			{"gone", &holder{body: testPattern(0, 1<<20), vanishAt: 2}, "no responders", false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				reply := tt.h.request(t, nc, "upload.PUT")
				if reply.Header.Get("Metro-Status") != "400" || !strings.Contains(string(reply.Data), tt.want) {
					t.Errorf("the handler read %v %s, want 400 saying %q", reply.Header, reply.Data, tt.want)
				}
				if tt.canc {
					select {
					case <-tt.h.cancelled:
					case <-time.After(10 * time.Second):
						t.Error("the reader did not cancel the broken stream")
					}
				}
			})
		}
	})

	t.Run("cancel", func(t *testing.T) {
		before := feedCancels(t, nc)
		first := request(t, nc, "feed.GET", nil, true)
		stream := first.Header.Get("Metro-Stream")
		if _, err := nc.Request(stream, nil, 10*time.Second); err != nil {
			t.Fatalf("pull: %v", err)
		}
		cancel := nats.NewMsg(stream)
		cancel.Header.Set("Metro-Stream-Control", "cancel")
		if err := nc.PublishMsg(cancel); err != nil {
			t.Fatal(err)
		}
		got := waitFeedCancel(t, nc, before)
		if !got.Aborted || !strings.Contains(got.Reason, "cancelled") {
			t.Errorf("after cancel the handler saw %+v", got)
		}
		// The holder dropped the stream: a pull now finds nobody.
		if _, err := nc.Request(stream, nil, 10*time.Second); !errors.Is(err, nats.ErrNoResponders) {
			t.Errorf("pull after cancel: %v, want no responders", err)
		}
	})

	t.Run("no pull before the deadline", func(t *testing.T) {
		before := feedCancels(t, nc)
		req := nats.NewMsg("feed.GET")
		req.Header.Set("Metro-Version", "3")
		req.Header.Set("Metro-Deadline", strconv.FormatInt(time.Now().Add(1500*time.Millisecond).UnixMilli(), 10))
		first, err := nc.RequestMsg(req, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got := waitFeedCancel(t, nc, before)
		if !got.Aborted || !strings.Contains(got.Reason, "deadline") {
			t.Errorf("past the deadline the handler saw %+v", got)
		}
		if _, err := nc.Request(first.Header.Get("Metro-Stream"), nil, 10*time.Second); !errors.Is(err, nats.ErrNoResponders) {
			t.Errorf("pull after the deadline: %v, want no responders", err)
		}
	})

	t.Run("handler throws mid-stream", func(t *testing.T) {
		first := request(t, nc, "half.GET", nil, true)
		got, _, err := readStream(t, nc, first, nil)
		if err == nil || !strings.Contains(err.Error(), "lost the database") {
			t.Errorf("stream of a failing handler ended with %v after %d bytes, want Metro-Stream-Error", err, len(got))
		}
	})
}

// startNode runs a node script in wd until the test ends; streams.js is
// written first.
func startNode(t *testing.T, wd, script string, env ...string) {
	if err := os.WriteFile(filepath.Join(wd, "streams.js"), []byte(streamsJS), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", script)
	cmd.Dir = wd
	cmd.Env = append(os.Environ(), env...)
	var logs metrotest.LockedBuffer
	cmd.Stderr = &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("%s stderr:\n%s", script, logs.String())
		}
	})
}

// waitService waits until the service name answers $SRV.INFO stating
// protocol version proto.
func waitService(t *testing.T, nc *nats.Conn, name, proto string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		msg, err := nc.Request("$SRV.INFO."+name, nil, time.Second)
		if err == nil {
			var info struct{ Metadata map[string]string }
			if err := json.Unmarshal(msg.Data, &info); err != nil {
				t.Fatal(err)
			}
			if got := info.Metadata["metro.protocol"]; got != proto {
				t.Fatalf("service %s states metro.protocol %q, want %q", name, got, proto)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s not up within 30s: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// request sends a request as the gateway does, of version 3 or not.
func request(t *testing.T, nc *nats.Conn, subj string, body []byte, v3 bool) *nats.Msg {
	t.Helper()
	req := nats.NewMsg(subj)
	req.Header.Set("Metro-Deadline", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
	req.Header.Set("Metro-Request-Id", "r-1")
	if v3 {
		req.Header.Set("Metro-Version", "3")
	}
	req.Data = body
	reply, err := nc.RequestMsg(req, 30*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", subj, err)
	}
	return reply
}

func testPattern(from, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		j := from + i
		b[i] = byte(j*7 + j>>12)
	}
	return b
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// readStream reads the body of a reply that starts with first as the
// gateway does: a window of 8 pulls, each with a reply subject of its own,
// parts numbered in order and no larger than a quarter of max_payload.
// each, when set, sees every part as it arrives.
func readStream(t *testing.T, nc *nats.Conn, first *nats.Msg, each func([]byte)) ([]byte, int, error) {
	t.Helper()
	stream := first.Header.Get("Metro-Stream")
	if !strings.HasPrefix(stream, "$METRO.STREAM._.") {
		return nil, 0, fmt.Errorf("reply does not start a stream: %v", first.Header)
	}
	inbox := nc.NewInbox()
	parts := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe(inbox+".*", parts)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	pulls := 0
	pull := func() {
		pulls++
		if err := nc.PublishRequest(stream, fmt.Sprintf("%s.%d", inbox, pulls), nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 8 {
		pull()
	}
	body := append([]byte(nil), first.Data...)
	for n := 1; ; n++ {
		var m *nats.Msg
		select {
		case m = <-parts:
		case <-time.After(30 * time.Second):
			return body, n - 1, fmt.Errorf("no part %d within 30s", n)
		}
		if e := m.Header.Get("Metro-Stream-Error"); e != "" {
			return body, n - 1, fmt.Errorf("stream broken: %s", e)
		}
		if got := m.Header.Get("Metro-Part"); got != strconv.Itoa(n) {
			return body, n - 1, fmt.Errorf("part %q where %d was due (%v)", got, n, m.Header)
		}
		if len(m.Data) > streamMaxPayload/4 {
			return body, n, fmt.Errorf("part %d holds %d bytes, over a quarter of max_payload", n, len(m.Data))
		}
		if len(m.Data) == 0 {
			return body, n - 1, nil
		}
		body = append(body, m.Data...)
		if each != nil {
			each(m.Data)
		}
		pull()
	}
}

// holder holds a request body as the gateway does: it names its stream
// subject in the request and answers pulls with parts. It answers a part
// only once 8 pulls are waiting, so that a reader with a smaller window
// stalls and one with a larger window shows in maxPending; with waitPing,
// it answers nothing until the reader, tired of waiting, has pinged. Its
// faults: skipPart leaves out a part number, failAt answers that part
// with Metro-Stream-Error, vanishAt unsubscribes on that pull.
type holder struct {
	body                       []byte
	first                      int
	waitPing                   bool
	skipPart, failAt, vanishAt int

	maxPending    int
	pinged        bool
	pendingAtPing int // pulls in flight when the reader first pinged
	cancelled     chan struct{}
}

func (h *holder) request(t *testing.T, nc *nats.Conn, subj string) *nats.Msg {
	t.Helper()
	h.cancelled = make(chan struct{})
	stream := "$METRO.STREAM._gateway.t." + nats.NewInbox()[len("_INBOX."):]
	msgs := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(stream, msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	req := nats.NewMsg(subj)
	req.Header.Set("Metro-Deadline", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
	req.Header.Set("Metro-Stream", stream)
	req.Header.Set("Content-Length", strconv.Itoa(len(h.body)))
	req.Data = h.body[:h.first]
	inbox := nc.NewRespInbox()
	replies, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer replies.Unsubscribe()
	if err := nc.PublishMsg(&nats.Msg{Subject: subj, Reply: inbox, Header: req.Header, Data: req.Data}); err != nil {
		t.Fatal(err)
	}

	var pending []*nats.Msg
	at, part := h.first, 0
	// last: the holder has sent its last part (or vanished); a reader it
	// broke also says cancel, which the test waits for.
	last := false
	for !last || ((h.skipPart != 0 || h.failAt != 0) && !isClosed(h.cancelled)) {
		var m *nats.Msg
		select {
		case m = <-msgs:
		case <-time.After(30 * time.Second):
			t.Fatalf("holder: nothing from the reader within 30s (%d pulls waiting, at %d of %d)", len(pending), at, len(h.body))
		}
		switch m.Header.Get("Metro-Stream-Control") {
		case "ping":
			if !h.pinged {
				h.pendingAtPing = len(pending)
			}
			h.pinged = true
			if m.Reply == "" {
				t.Error("a ping without a reply subject")
			}
		case "cancel":
			if !isClosed(h.cancelled) {
				close(h.cancelled)
			}
		case "":
			if m.Reply == "" || len(m.Header) != 0 || len(m.Data) != 0 {
				t.Errorf("a pull with reply %q, headers %v, %d bytes", m.Reply, m.Header, len(m.Data))
			}
			pending = append(pending, m)
			h.maxPending = max(h.maxPending, len(pending))
		}
		for !last && len(pending) == 8 && (!h.waitPing || h.pinged) {
			p := pending[0]
			pending = pending[1:]
			part++
			if part == h.vanishAt {
				sub.Unsubscribe()
				last = true
				break
			}
			skip := part == h.skipPart
			if skip {
				part++
			}
			n := min(32<<10, len(h.body)-at)
			out := nats.NewMsg(p.Reply)
			out.Header.Set("Metro-Part", strconv.Itoa(part))
			if part == h.failAt {
				out.Header.Set("Metro-Stream-Error", "the client went away")
				n = 0
			}
			out.Data = h.body[at : at+n]
			at += n
			if err := nc.PublishMsg(out); err != nil {
				t.Fatal(err)
			}
			last = n == 0 || skip
		}
	}
	reply, err := replies.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("reply to %s: %v", subj, err)
	}
	return reply
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

type feedCancel struct {
	Aborted bool
	Reason  string
}

func feedCancels(t *testing.T, nc *nats.Conn) int {
	t.Helper()
	var st struct{ Cancelled []feedCancel }
	if err := json.Unmarshal(request(t, nc, "feed.status.GET", nil, false).Data, &st); err != nil {
		t.Fatal(err)
	}
	return len(st.Cancelled)
}

// waitFeedCancel waits for the feed handler to record a cancellation
// after the first before.
func waitFeedCancel(t *testing.T, nc *nats.Conn, before int) feedCancel {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var st struct{ Cancelled []feedCancel }
		if err := json.Unmarshal(request(t, nc, "feed.status.GET", nil, false).Data, &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Cancelled) > before {
			return st.Cancelled[before]
		}
	}
	t.Fatal("the feed handler saw no cancellation within 20s")
	return feedCancel{}
}

// testNodeUnits runs the worker's own tests (npm test), protocol.test.js
// among them, and checks that none failed or was skipped.
func testNodeUnits(t *testing.T, wd string) {
	out := run(t, wd, nil, "node", "--test")
	for _, want := range []string{"# fail 0", "# skipped 0", "# cancelled 0"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("node --test output lacks %q:\n%s", want, out)
		}
	}
	if bytes.Contains(out, []byte("# pass 0\n")) {
		t.Errorf("node --test ran nothing:\n%s", out)
	}
}
