package tap

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

const sub1 = "$METRO.STREAM.w.c.0123"

// pull is a reader's pull of the stream on subj; its part comes on reply.
func pull(subj, reply string) *nats.Msg { return &nats.Msg{Subject: subj, Reply: reply} }

func control(subj, what, reply string) *nats.Msg {
	return &nats.Msg{Subject: subj, Reply: reply, Header: nats.Header{"Metro-Stream-Control": {what}}}
}

func part(reply, n, body string, errText string) *nats.Msg {
	m := &nats.Msg{Subject: reply, Data: []byte(body), Header: nats.Header{"Metro-Part": {n}}}
	if errText != "" {
		m.Header.Set("Metro-Stream-Error", errText)
	}
	return m
}

func TestPairingStreams(t *testing.T) {
	ms := time.Millisecond
	streamed := func(subj string) map[string]string { return map[string]string{"Metro-Stream": subj} }
	tests := []struct {
		name  string
		steps []step
		want  Exchange // compared on the fields below
	}{
		{
			name: "a streamed reply is one exchange with its bytes, parts and both latencies",
			steps: []step{
				{0, req("files.GET", "_INBOX.g.1", nil, ""), false},
				{2 * ms, req("_INBOX.g.1", "", streamed(sub1), "abc"), false},
				{3 * ms, pull(sub1, "_INBOX.r.x.1"), false},
				{3 * ms, pull(sub1, "_INBOX.r.x.2"), false},
				{4 * ms, control(sub1, "ping", "_INBOX.r.x.p"), false},
				{5 * ms, part("_INBOX.r.x.1", "1", "defgh", ""), false},
				{5 * ms, pull(sub1, "_INBOX.r.x.3"), false},
				{9 * ms, part("_INBOX.r.x.2", "2", "", ""), false},
			},
			want: Exchange{Outcome: OK, Status: 200, FirstPart: 2 * ms, Latency: 9 * ms,
				Response: Message{Size: 8, Parts: 3, Body: []byte("abcdefgh")}},
		},
		{
			name: "Metro-Stream-Error breaks it",
			steps: []step{
				{0, req("files.GET", "_INBOX.g.1", nil, ""), false},
				{ms, req("_INBOX.g.1", "", streamed(sub1), "abc"), false},
				{ms, pull(sub1, "_INBOX.r.x.1"), false},
				{2 * ms, part("_INBOX.r.x.1", "1", "", "the handler panicked"), false},
			},
			want: Exchange{Outcome: OK, Status: 200, Response: Message{Size: 3, Parts: 2},
				StreamError: "the streamed reply body did not end: the handler panicked"},
		},
		{
			name: "a missing part breaks it",
			steps: []step{
				{0, req("files.GET", "_INBOX.g.1", nil, ""), false},
				{ms, req("_INBOX.g.1", "", streamed(sub1), "abc"), false},
				{ms, pull(sub1, "_INBOX.r.x.1"), false},
				{ms, pull(sub1, "_INBOX.r.x.2"), false},
				{2 * ms, part("_INBOX.r.x.2", "2", "zz", ""), false},
			},
			want: Exchange{Outcome: OK, StreamError: `the streamed reply body did not end: part "2" came where part 1 was due`},
		},
		{
			name: "a cancel by the reader breaks a reply",
			steps: []step{
				{0, req("files.GET", "_INBOX.g.1", nil, ""), false},
				{ms, req("_INBOX.g.1", "", streamed(sub1), "abc"), false},
				{ms, pull(sub1, "_INBOX.r.x.1"), false},
				{2 * ms, control(sub1, "cancel", ""), false},
			},
			want: Exchange{Outcome: OK, StreamError: "the streamed reply body did not end: its reader cancelled it"},
		},
		{
			name: "a stream that never ends is broken at the deadline",
			steps: []step{
				{0, req("files.GET", "_INBOX.g.1", map[string]string{"Metro-Deadline": deadline(t0.Add(time.Second))}, ""), false},
				{ms, req("_INBOX.g.1", "", streamed(sub1), "abc"), false},
				{ms, pull(sub1, "_INBOX.r.x.1"), false},
				{time.Second, nil, true}, // within the grace
				{2 * time.Second, nil, true},
			},
			want: Exchange{Outcome: OK, Status: 200, Latency: 2 * time.Second,
				StreamError: "the streamed reply body did not end: it did not end before the deadline"},
		},
		{
			name: "a streamed request body read to its length is whole though its end was never pulled",
			steps: []step{
				{0, req("up.POST", "_INBOX.g.2", map[string]string{"Metro-Stream": sub1, "Content-Length": "7"}, "abc"), false},
				{ms, pull(sub1, "_INBOX.w.y.1"), false},
				{2 * ms, part("_INBOX.w.y.1", "1", "defg", ""), false},
				{2 * ms, pull(sub1, "_INBOX.w.y.2"), false},
				{3 * ms, control(sub1, "cancel", ""), false},
				{4 * ms, req("_INBOX.g.2", "", map[string]string{"Metro-Status": "201"}, "ok"), false},
			},
			want: Exchange{Outcome: OK, Status: 201, Latency: 4 * ms, Request: Message{Size: 7, Parts: 2}, Response: Message{Size: 2}},
		},
		{
			name: "a streamed request body cut short by the reply is broken",
			steps: []step{
				{0, req("up.POST", "_INBOX.g.2", map[string]string{"Metro-Stream": sub1}, "abc"), false},
				{ms, pull(sub1, "_INBOX.w.y.1"), false},
				{4 * ms, req("_INBOX.g.2", "", map[string]string{"Metro-Status": "400"}, ""), false},
			},
			want: Exchange{Outcome: OK, Status: 400, Request: Message{Size: 3, Parts: 1},
				StreamError: "the streamed request body did not end: the reply came before it was read to its end"},
		},
		{
			name: "both bodies stream: the exchange ends with the last",
			steps: []step{
				{0, req("echo.POST", "_INBOX.g.3", map[string]string{"Metro-Stream": sub1}, "ab"), false},
				{ms, pull(sub1, "_INBOX.w.y.1"), false},
				{2 * ms, req("_INBOX.g.3", "", streamed("$METRO.STREAM.w.c.2"), "AB"), false},
				{2 * ms, pull("$METRO.STREAM.w.c.2", "_INBOX.r.z.1"), false},
				{3 * ms, part("_INBOX.w.y.1", "1", "", ""), false},
				{4 * ms, part("_INBOX.r.z.1", "1", "", ""), false},
			},
			want: Exchange{Outcome: OK, Status: 200, FirstPart: 2 * ms, Latency: 4 * ms,
				Request: Message{Size: 2, Parts: 2}, Response: Message{Size: 2, Parts: 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPairer("", true)
			got := play(p, tt.steps)
			if len(got) != 1 {
				t.Fatalf("got %d exchanges, want 1: %+v", len(got), got)
			}
			g, w := got[0], tt.want
			check := func(field string, got, want any, set bool) {
				t.Helper()
				if set && got != want {
					t.Errorf("%s = %v, want %v", field, got, want)
				}
			}
			check("Outcome", g.Outcome, w.Outcome, true)
			check("Status", g.Status, w.Status, w.Status != 0)
			check("FirstPart", g.FirstPart, w.FirstPart, w.FirstPart != 0)
			check("Latency", g.Latency, w.Latency, w.Latency != 0)
			check("StreamError", g.StreamError, w.StreamError, true)
			check("Broken", g.Broken(), w.StreamError != "", true)
			check("Request.Size", g.Request.Size, w.Request.Size, w.Request.Size != 0)
			check("Request.Parts", g.Request.Parts, w.Request.Parts, w.Request.Size != 0)
			check("Response.Size", g.Response.Size, w.Response.Size, w.Response.Size != 0)
			check("Response.Parts", g.Response.Parts, w.Response.Parts, w.Response.Size != 0)
			check("Response.Body", string(g.Response.Body), string(w.Response.Body), w.Response.Body != nil)
			if p.Pending() != 0 || len(p.streams) != 0 || len(p.pulls) != 0 {
				t.Errorf("left behind: %d pending, %d streams, %d pulls", p.Pending(), len(p.streams), len(p.pulls))
			}
		})
	}
}

// TestPairerStreamsBounded: a reader that renews its window for ever (an
// idle event stream) does not grow what tap remembers of it.
func TestPairerStreamsBounded(t *testing.T) {
	p := NewPairer("", true)
	p.Observe(req("events.GET", "_INBOX.g.1", nil, ""), t0)
	p.Observe(req("_INBOX.g.1", "", map[string]string{"Metro-Stream": sub1}, "data: hi\n\n"), t0)
	for i := range 10 * maxPullsPerStream {
		p.Observe(pull(sub1, "_INBOX.r.x."+strings.Repeat("1", 1+i%5)+string(rune('a'+i%26))+string(rune('a'+i/26%26))), t0)
	}
	if n := len(p.pulls); n > maxPullsPerStream {
		t.Fatalf("%d pulls remembered for one stream, want at most %d", n, maxPullsPerStream)
	}
}

// TestStreamTrafficIsNoExchange: with subjects named (where any message
// on them is a request), pulls, pings and cancels of a stream tap did
// not see start are still no exchange.
func TestStreamTrafficIsNoExchange(t *testing.T) {
	p := NewPairer("", false)
	for _, m := range []*nats.Msg{pull(sub1, "_INBOX.r.x.1"), control(sub1, "ping", "_INBOX.r.x.p"), control(sub1, "cancel", ""), part("_INBOX.r.x.1", "1", "x", "")} {
		if ex, ok := p.Observe(m, t0); ok {
			t.Errorf("%s made an exchange: %+v", m.Subject, ex)
		}
	}
}

// FuzzObserveStreams drives the pairer with a script of stream messages
// in any order: requests and replies naming streams, pulls, parts,
// pings, cancels, errors. Whatever comes, every exchange ends once, and
// nothing of a stream is left behind after the deadline.
func FuzzObserveStreams(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5})
	f.Add([]byte{0, 6, 1, 2, 3, 7, 4})
	f.Add([]byte{8, 2, 9, 1, 3, 3, 4, 10})
	f.Fuzz(func(t *testing.T, script []byte) {
		const (
			s1, s2 = "$METRO.STREAM.w.c.1", "$METRO.STREAM.g.c.2"
			inbox  = "_INBOX.g.1"
		)
		p := NewPairer("", true)
		var got []Exchange
		pull := 0
		for i, op := range script {
			now := t0.Add(time.Duration(i) * time.Millisecond)
			reply := "_INBOX.r.x." + strconv.Itoa(pull)
			var m *nats.Msg
			switch op % 11 {
			case 0:
				m = req("files.GET", inbox, nil, "")
			case 1:
				m = req(inbox, "", map[string]string{"Metro-Stream": s1}, "ab")
			case 2:
				pull++
				m = &nats.Msg{Subject: s1, Reply: "_INBOX.r.x." + strconv.Itoa(pull)}
			case 3:
				m = part(reply, strconv.Itoa(pull), "xyz", "")
			case 4:
				m = part(reply, strconv.Itoa(pull), "", "")
			case 5:
				m = control(s1, "ping", "_INBOX.r.x.p")
			case 6:
				m = control(s1, "cancel", "")
			case 7:
				m = part(reply, strconv.Itoa(pull), "", "boom")
			case 8:
				m = req("up.POST", inbox, map[string]string{"Metro-Stream": s2, "Content-Length": "4"}, "ab")
			case 9:
				pull++
				m = &nats.Msg{Subject: s2, Reply: "_INBOX.r.x." + strconv.Itoa(pull)}
			case 10:
				m = req(inbox, "", map[string]string{"Metro-Status": "201"}, "")
			}
			if ex, ok := p.Observe(m, now); ok {
				got = append(got, ex)
			}
		}
		p.Expire(t0.Add(maxWait+time.Minute), func(ex Exchange) { got = append(got, ex) })
		started, ended := map[uint64]bool{}, map[uint64]bool{}
		for _, ex := range got {
			if ex.Outcome == Pending {
				if started[ex.Seq] {
					t.Fatalf("exchange %d started twice", ex.Seq)
				}
				started[ex.Seq] = true
				continue
			}
			if ended[ex.Seq] {
				t.Fatalf("exchange %d ended twice", ex.Seq)
			}
			ended[ex.Seq] = true
			if ex.Response.Size < 0 || ex.Request.Size < 0 || len(ex.Response.Body) > ex.Response.Size {
				t.Fatalf("exchange %d sizes: %+v", ex.Seq, ex)
			}
		}
		for seq := range started {
			if !ended[seq] {
				t.Fatalf("exchange %d started and never ended", seq)
			}
		}
		if p.Pending() != 0 || len(p.streams) != 0 || len(p.pulls) != 0 {
			t.Fatalf("left behind: %d pending, %d streams, %d pulls", p.Pending(), len(p.streams), len(p.pulls))
		}
	})
}
