package tap

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/discovery"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func req(subj, reply string, hdr map[string]string, body string) *nats.Msg {
	m := &nats.Msg{Subject: subj, Reply: reply, Data: []byte(body), Header: nats.Header{}}
	for k, v := range hdr {
		m.Header.Set(k, v)
	}
	return m
}

func deadline(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// step is one message arriving (msg) or time passing (expire) in a
// pairing scenario.
type step struct {
	at     time.Duration
	msg    *nats.Msg
	expire bool
}

// play feeds steps to p, from t0 on, and returns the exchanges it ended.
func play(p *Pairer, steps []step) []Exchange {
	var got []Exchange
	for _, s := range steps {
		now := t0.Add(s.at)
		if s.expire {
			p.Expire(now, func(ex Exchange) { got = append(got, ex) })
			continue
		}
		if ex, ok := p.Observe(s.msg, now); ok && ex.Outcome != Pending {
			got = append(got, ex)
		}
	}
	return got
}

func TestPairing(t *testing.T) {
	tests := []struct {
		name      string
		prefix    string
		metroOnly bool
		steps     []step
		want      []Exchange // compared on the fields set in want
	}{
		{
			name: "request and reply make one exchange", metroOnly: true,
			steps: []step{
				{0, req("users.42.GET", "_INBOX.a.1", map[string]string{"Metro-Query": "x=1", "Metro-Request-Id": "r1"}, ""), false},
				{3 * time.Millisecond, req("_INBOX.a.1", "", nil, `{"id":42}`), false},
			},
			want: []Exchange{{Subject: "users.42.GET", Method: "GET", Path: "/users/42", Query: "x=1", RequestID: "r1",
				Outcome: OK, Status: 200, Latency: 3 * time.Millisecond}},
		},
		{
			name: "Metro-Status and prefix", prefix: "api", metroOnly: true,
			steps: []step{
				{0, req("api.orders.POST", "_INBOX.a.2", nil, "{}"), false},
				{time.Millisecond, req("_INBOX.a.2", "", map[string]string{"Metro-Status": "201"}, ""), false},
			},
			want: []Exchange{{Method: "POST", Path: "/orders", Outcome: OK, Status: 201, Latency: time.Millisecond}},
		},
		{
			name: "replies pair by reply subject, in any order", metroOnly: true,
			steps: []step{
				{0, req("a.GET", "_INBOX.x.1", nil, ""), false},
				{time.Millisecond, req("b.GET", "_INBOX.x.2", nil, ""), false},
				{2 * time.Millisecond, req("_INBOX.x.2", "", map[string]string{"Metro-Status": "404"}, ""), false},
				{5 * time.Millisecond, req("_INBOX.x.1", "", nil, ""), false},
			},
			want: []Exchange{
				{Path: "/b", Status: 404, Latency: time.Millisecond},
				{Path: "/a", Status: 200, Latency: 5 * time.Millisecond},
			},
		},
		{
			name: "micro service error", metroOnly: true,
			steps: []step{
				{0, req("sum.POST", "_INBOX.m.1", nil, "1 2"), false},
				{time.Millisecond, req("_INBOX.m.1", "", map[string]string{"Nats-Service-Error-Code": "422", "Nats-Service-Error": "bad numbers"}, ""), false},
			},
			want: []Exchange{{Path: "/sum", Status: 422, Error: "bad numbers"}},
		},
		{
			name: "malformed Metro-Status is what the gateway answers: 502", metroOnly: true,
			steps: []step{
				{0, req("x.GET", "_INBOX.m.2", nil, ""), false},
				{time.Millisecond, req("_INBOX.m.2", "", map[string]string{"Metro-Status": "abc"}, ""), false},
			},
			want: []Exchange{{Path: "/x", Status: 502, Outcome: OK}},
		},
		{
			name: "no responders", metroOnly: true,
			steps: []step{
				{0, req("gone.GET", "_INBOX.n.1", nil, ""), false},
				{time.Millisecond, req("_INBOX.n.1", "", map[string]string{"Status": "503"}, ""), false},
			},
			want: []Exchange{{Path: "/gone", Outcome: NoResponders, Status: 0}},
		},
		{
			name: "timeout at Metro-Deadline, not before", metroOnly: true,
			steps: []step{
				{0, req("slow.GET", "_INBOX.t.1", map[string]string{"Metro-Deadline": deadline(t0.Add(2 * time.Second))}, ""), false},
				{2 * time.Second, nil, true}, // at the deadline: within the grace
				{3 * time.Second, nil, true},
				{4 * time.Second, req("_INBOX.t.1", "", nil, "late"), false}, // too late: not paired again
			},
			want: []Exchange{{Path: "/slow", Outcome: Timeout, Latency: 3 * time.Second}},
		},
		{
			name: "timeout without a deadline after the default wait", metroOnly: true,
			steps: []step{
				{0, req("plain.GET", "_INBOX.t.2", nil, ""), false},
				{DefaultWait - time.Second, nil, true},
				{DefaultWait + time.Second, nil, true},
			},
			want: []Exchange{{Path: "/plain", Outcome: Timeout}},
		},
		{
			name: "publish without reply", metroOnly: false,
			steps:  []step{{0, req("events.created", "", nil, "hi"), false}},
			want:   []Exchange{{Subject: "events.created", Outcome: Published, Request: Message{Size: 2}}},
			prefix: "",
		},
		{
			name: "tapping everything skips NATS's own subjects and non-metro ones", metroOnly: true,
			steps: []step{
				{0, req("$SRV.INFO", "_INBOX.s.1", nil, ""), false},
				{0, req("_INBOX.s.1", "", nil, "{}"), false},
				{0, req("not.a.metro.subject", "_INBOX.s.2", nil, ""), false},
				{0, req("_INBOX.s.2", "", nil, ""), false},
			},
			want: nil,
		},
		{
			name: "explicit subjects take Method and Path from headers", metroOnly: false,
			steps: []step{
				{0, req("legacy.thing", "_INBOX.h.1", map[string]string{"Metro-Method": "PUT", "Metro-Path": "/legacy"}, ""), false},
				{time.Millisecond, req("_INBOX.h.1", "", nil, ""), false},
			},
			want: []Exchange{{Subject: "legacy.thing", Method: "PUT", Path: "/legacy", Status: 200}},
		},
		{
			name: "a request delivered twice by overlapping subscriptions is one exchange", metroOnly: false,
			steps: []step{
				{0, req("users.1.GET", "_INBOX.d.1", nil, ""), false},
				{0, req("users.1.GET", "_INBOX.d.1", nil, ""), false},
				{time.Millisecond, req("_INBOX.d.1", "", nil, ""), false},
				{time.Minute, nil, true},
			},
			want: []Exchange{{Path: "/users/1", Status: 200}},
		},
		{
			name: "a reply to an unseen request is ignored", metroOnly: true,
			steps: []step{{0, req("_INBOX.u.1", "", nil, "x"), false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPairer(tt.prefix, tt.metroOnly)
			got := play(p, tt.steps)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d exchanges, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				g := got[i]
				check := func(field string, got, want any, set bool) {
					if set && got != want {
						t.Errorf("exchange %d: %s = %v, want %v", i, field, got, want)
					}
				}
				check("Subject", g.Subject, w.Subject, w.Subject != "")
				check("Method", g.Method, w.Method, w.Method != "")
				check("Path", g.Path, w.Path, w.Path != "")
				check("Query", g.Query, w.Query, w.Query != "")
				check("RequestID", g.RequestID, w.RequestID, w.RequestID != "")
				check("Outcome", g.Outcome, w.Outcome, w.Outcome != 0)
				check("Status", g.Status, w.Status, w.Status != 0 || w.Outcome == NoResponders)
				check("Latency", g.Latency, w.Latency, w.Latency != 0)
				check("Error", g.Error, w.Error, w.Error != "")
				check("Request.Size", g.Request.Size, w.Request.Size, w.Request.Size != 0)
			}
			if p.Pending() != 0 && tt.name != "tapping everything skips NATS's own subjects and non-metro ones" {
				t.Errorf("%d requests still pending", p.Pending())
			}
		})
	}
}

func TestPairerWorkerFromServices(t *testing.T) {
	p := NewPairer("", true)
	p.AddService(discovery.Service{Name: "users", ID: "u1", Routes: []discovery.Route{{Subject: "users.*.GET"}}}, t0)
	p.AddService(discovery.Service{Name: "files", ID: "f1", Routes: []discovery.Route{{Subject: "files.>"}}}, t0)
	p.AddService(discovery.Service{Name: "mirror", ID: "m1", Routes: []discovery.Route{{Subject: "files.>"}}}, t0)
	tests := []struct{ subj, want string }{
		{"users.7.GET", "users"},
		{"users.7.DELETE", ""},
		{"files.a.b.GET", ""}, // two queue groups each get it: unknown
		{"other.GET", ""},
	}
	for i, tt := range tests {
		reply := "_INBOX.w." + strconv.Itoa(i)
		if start, _ := p.Observe(req(tt.subj, reply, nil, ""), t0); start.Outcome != Pending || start.Worker != tt.want {
			t.Errorf("%s: start %v worker %q", tt.subj, start.Outcome, start.Worker)
		}
		ex, ok := p.Observe(req(reply, "", nil, ""), t0)
		if !ok || ex.Worker != tt.want {
			t.Errorf("%s: worker %q (paired %v), want %q", tt.subj, ex.Worker, ok, tt.want)
		}
	}
	// A timeout on a subject no service announces says why it is likely.
	p.Observe(req("other.GET", "_INBOX.t.1", nil, ""), t0)
	p.Observe(req("users.9.GET", "_INBOX.t.2", nil, ""), t0)
	var timedOut []Exchange
	p.Expire(t0.Add(DefaultWait+time.Second), func(ex Exchange) { timedOut = append(timedOut, ex) })
	if len(timedOut) != 2 || timedOut[0].Error != ErrUnserved.Error() || timedOut[1].Error != "" {
		t.Errorf("timeouts %+v: want the unserved one explained, the served one not", timedOut)
	}
	// Services not heard from for a while no longer name workers.
	p.workers.prune(t0.Add(serviceTTL + time.Second))
	p.Observe(req("users.8.GET", "_INBOX.w.x", nil, ""), t0)
	if ex, _ := p.Observe(req("_INBOX.w.x", "", nil, ""), t0); ex.Worker != "" {
		t.Errorf("worker %q after its service went quiet", ex.Worker)
	}
	// Knowing no services at all, tap does not guess.
	p.Observe(req("other.GET", "_INBOX.t.3", nil, ""), t0)
	p.Expire(t0.Add(time.Hour), func(ex Exchange) {
		if ex.Error != "" {
			t.Errorf("timeout explained as %q with no services known", ex.Error)
		}
	})
}

func TestPairerBounded(t *testing.T) {
	p := NewPairer("", true)
	p.limit = 100
	for i := range p.limit + 10 {
		p.Observe(req("a.GET", "_INBOX.b."+strconv.Itoa(i), nil, ""), t0)
	}
	if p.Pending() != p.limit || p.Dropped() != 10 {
		t.Fatalf("pending %d dropped %d, want %d and 10", p.Pending(), p.Dropped(), p.limit)
	}
	// Answered requests leave stale deadlines behind; they must not pile up.
	q := NewPairer("", true)
	for i := range 10000 {
		r := "_INBOX.c." + strconv.Itoa(i)
		q.Observe(req("a.GET", r, nil, ""), t0)
		q.Observe(req(r, "", nil, ""), t0)
	}
	if len(q.due) > 1024 {
		t.Fatalf("%d deadlines kept for 0 pending requests", len(q.due))
	}
}

func TestKeepBoundsBodies(t *testing.T) {
	big := make([]byte, MaxBody*3)
	m := keep(&nats.Msg{Data: big}, MaxBody)
	if m.Size != len(big) || len(m.Body) != MaxBody || !m.Truncated() {
		t.Fatalf("size %d body %d truncated %v", m.Size, len(m.Body), m.Truncated())
	}
}

func FuzzObserve(f *testing.F) {
	f.Add("users.42.GET", "_INBOX.a.1", "Metro-Status", "201", "api")
	f.Add("_INBOX.a.1", "", "Status", "503", "")
	f.Add("$SRV.INFO", "_INBOX.b", "Metro-Deadline", "-1", "")
	f.Fuzz(func(t *testing.T, subj, reply, hk, hv, prefix string) {
		if subj == "" {
			return // NATS delivers no message without a subject
		}
		for _, metroOnly := range []bool{true, false} {
			p := NewPairer(prefix, metroOnly)
			m := &nats.Msg{Subject: subj, Reply: reply, Header: nats.Header{hk: {hv}}}
			var got []Exchange
			if ex, ok := p.Observe(m, t0); ok {
				got = append(got, ex)
			}
			if reply != "" {
				if ex, ok := p.Observe(&nats.Msg{Subject: reply, Header: nats.Header{hk: {hv}}}, t0.Add(time.Millisecond)); ok {
					got = append(got, ex)
				}
			}
			p.Expire(t0.Add(maxWait+time.Minute), func(ex Exchange) { got = append(got, ex) })
			// Every exchange ends once, after starting at most once.
			started, ended := map[uint64]bool{}, map[uint64]bool{}
			for _, ex := range got {
				if ex.Seq == 0 || ended[ex.Seq] || ex.Subject != subj && ex.Subject != reply {
					t.Fatalf("exchange %+v from messages on %q and %q", ex, subj, reply)
				}
				if ex.Outcome == Pending {
					if started[ex.Seq] {
						t.Fatalf("exchange %d started twice", ex.Seq)
					}
					started[ex.Seq] = true
					continue
				}
				ended[ex.Seq] = true
			}
			for seq := range started {
				if !ended[seq] {
					t.Fatalf("exchange %d started and never ended", seq)
				}
			}
			if p.Pending() != 0 {
				t.Fatalf("%d requests pending after their deadline", p.Pending())
			}
		}
	})
}

// The route recorded with an exchange is the most specific of its one
// service's routes that match, as that service's ServeMux would choose.
func TestPairerRoute(t *testing.T) {
	p := NewPairer("", true)
	p.AddService(discovery.Service{Name: "files", ID: "f1", Routes: []discovery.Route{
		{Pattern: "GET /files/{path...}", Subject: "files.>"},
		{Pattern: "GET /files/{name}", Subject: "files.*.GET"},
		{Pattern: "GET /files/readme", Subject: "files.readme.GET"},
	}}, t0)
	for i, tt := range []struct{ subj, route string }{
		{"files.readme.GET", "GET /files/readme"},
		{"files.a.GET", "GET /files/{name}"},
		{"files.a.b.GET", "GET /files/{path...}"},
		{"other.GET", ""},
	} {
		reply := "_INBOX.r." + strconv.Itoa(i)
		p.Observe(req(tt.subj, reply, nil, ""), t0)
		if ex, _ := p.Observe(req(reply, "", nil, ""), t0); ex.Route != tt.route {
			t.Errorf("%s: route %q, want %q", tt.subj, ex.Route, tt.route)
		}
	}
}
