package tui

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"github.com/metropolis-dev/metro/internal/tap"
)

// Golden frames are compared with teatest's helper, which registers the
// -update flag (go test ./internal/tui -update rewrites testdata/).

func TestMain(m *testing.M) {
	// No colour in frames, so goldens do not depend on the terminal.
	lipgloss.SetColorProfile(termenv.Ascii)
	var err error
	if binDir, err = os.MkdirTemp("", "metro-tui-test"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

var t0 = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)

func hdr(kv ...string) map[string][]string {
	h := map[string][]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = append(h[kv[i]], kv[i+1])
	}
	return h
}

func msg(body string, kv ...string) tap.Message {
	return tap.Message{Header: hdr(kv...), Body: []byte(body), Size: len(body)}
}

// mixed is a small mixed stream: every outcome and status class.
func mixed() []tap.Exchange {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	return []tap.Exchange{
		{Seq: 1, Time: at(0), Subject: "users.42.GET", Reply: "_INBOX.a.1", Method: "GET", Path: "/users/42", RequestID: "r-1",
			Outcome: tap.OK, Status: 200, Latency: 1200 * time.Microsecond, Worker: "users",
			Request:  msg("", "Metro-Method", "GET", "Metro-Path", "/users/42", "Metro-Request-Id", "r-1"),
			Response: msg(`{"id":42,"name":"Ada","admin":false,"tags":["a","b"],"manager":null,"score":9.5}`, "Content-Type", "application/json")},
		{Seq: 2, Time: at(15), Subject: "orders.POST", Method: "POST", Path: "/orders", Query: "dry=1",
			Outcome: tap.OK, Status: 201, Latency: 12500 * time.Microsecond, Worker: "orders",
			Request: msg(`{"sku":"a-1","qty":2}`), Response: msg(`{"order":7}`)},
		{Seq: 3, Time: at(30), Subject: "orders.9.GET", Method: "GET", Path: "/orders/9",
			Outcome: tap.OK, Status: 404, Latency: 800 * time.Microsecond, Worker: "orders", Response: msg(`not found`)},
		{Seq: 4, Time: at(45), Subject: "slow.GET", Method: "GET", Path: "/slow",
			Outcome: tap.Timeout, Latency: 30 * time.Second},
		{Seq: 5, Time: at(60), Subject: "users.7.DELETE", Method: "DELETE", Path: "/users/7",
			Outcome: tap.OK, Status: 500, Latency: 3 * time.Millisecond, Worker: "users", Error: "database down",
			Response: msg("", "Nats-Service-Error", "database down", "Nats-Service-Error-Code", "500")},
		{Seq: 6, Time: at(75), Subject: "gone.GET", Method: "GET", Path: "/gone", Outcome: tap.NoResponders},
		{Seq: 7, Time: at(90), Subject: "events.created", Outcome: tap.Published, Request: msg("hello")},
		{Seq: 8, Time: at(105), Subject: "files.logo%2Epng.GET", Method: "GET", Path: "/files/logo.png",
			Outcome: tap.OK, Status: 200, Latency: 2 * time.Millisecond,
			Response: tap.Message{Body: []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), Size: 5120}},
	}
}

// streamy has streamed exchanges: a large download, an event feed, an
// upload, one that broke, and a plain one beside them.
func streamy() []tap.Exchange {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	streamed := func(body string, size, parts int) tap.Message {
		return tap.Message{Header: hdr("Metro-Stream", "$METRO.STREAM.files.c1.9f"), Body: []byte(body), Size: size, Parts: parts}
	}
	return []tap.Exchange{
		{Seq: 1, Time: at(0), Subject: "files.big.GET", Method: "GET", Path: "/files/big", Outcome: tap.OK, Status: 200,
			FirstPart: 1200 * time.Microsecond, Latency: 340 * time.Millisecond, Worker: "files",
			Response: streamed("0123456789abcdef", 20<<20, 321)},
		{Seq: 2, Time: at(10), Subject: "feed.GET", Method: "GET", Path: "/feed", Outcome: tap.OK, Status: 200,
			FirstPart: 900 * time.Microsecond, Latency: 2500 * time.Millisecond, Worker: "feed",
			Response: streamed("data: one\n\ndata: two\n\ndata: three\n\n", 36, 4)},
		{Seq: 3, Time: at(20), Subject: "uploads.POST", Method: "POST", Path: "/uploads", Outcome: tap.OK, Status: 201,
			FirstPart: 80 * time.Millisecond, Latency: 80 * time.Millisecond, Worker: "files",
			Request: streamed("PK", 3<<20, 49), Response: msg("ok")},
		{Seq: 4, Time: at(30), Subject: "files.cut.GET", Method: "GET", Path: "/files/cut", Outcome: tap.OK, Status: 200,
			FirstPart: 2 * time.Millisecond, Latency: 15 * time.Millisecond, Worker: "files",
			StreamError: "the streamed reply body did not end: the handler panicked",
			Response:    streamed("0123", 1<<20, 17)},
		{Seq: 5, Time: at(40), Subject: "users.1.GET", Method: "GET", Path: "/users/1", Outcome: tap.OK, Status: 200,
			Latency: time.Millisecond, Worker: "users", Response: msg(`{"id":1}`)},
	}
}

// many is n plain 200 exchanges, a millisecond apart.
func many(n, from int) []tap.Exchange {
	out := make([]tap.Exchange, n)
	for i := range out {
		k := from + i
		out[i] = tap.Exchange{Seq: uint64(k), Time: t0.Add(time.Duration(k) * time.Millisecond), Method: "GET",
			Subject: "items." + itoa(k) + ".GET", Path: "/items/" + itoa(k), Outcome: tap.OK, Status: 200, Latency: time.Millisecond}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// started is exchange seq as intake first hands it on: pending.
func started(seq int, path string) tap.Exchange {
	return tap.Exchange{Seq: uint64(seq), Time: t0.Add(time.Duration(seq) * 10 * time.Millisecond),
		Deadline: t0.Add(30 * time.Second), Method: "GET", Path: path, Subject: strings.ReplaceAll(path[1:], "/", ".") + ".GET",
		Outcome: tap.Pending, Worker: "shop"}
}

// ended is started(seq, path) finished with outcome and status.
func ended(seq int, path string, o tap.Outcome, status int, lat time.Duration) tap.Exchange {
	ex := started(seq, path)
	ex.Outcome, ex.Status, ex.Latency = o, status, lat
	return ex
}

// act is one thing that happens to the program in a frame test.
type act struct {
	add  []tap.Exchange // added to the feed (intake)
	tick time.Duration  // since t0; a tick takes from the feed
	keys string         // typed, one key per rune
	key  tea.KeyType    // a special key
	size [2]int         // a resize
}

func tick(d time.Duration) act   { return act{tick: d} }
func typed(s string) act         { return act{keys: s} }
func press(k tea.KeyType) act    { return act{key: k} }
func feed(ex []tap.Exchange) act { return act{add: ex} }

func TestFrames(t *testing.T) {
	tests := []struct {
		name   string
		buffer int // rows kept
		queue  int // feed size
		size   [2]int
		acts   []act
	}{
		{name: "empty", acts: []act{tick(0)}},
		{name: "table", acts: []act{tick(0), feed(mixed()), tick(time.Second)}},
		{name: "filter_path", acts: []act{tick(0), feed(mixed()), tick(time.Second), typed("/orders"), press(tea.KeyEnter)}},
		{name: "filter_typing", acts: []act{tick(0), feed(mixed()), tick(time.Second), typed("/user")}},
		{name: "filter_status_class", acts: []act{tick(0), feed(mixed()), tick(time.Second), typed("/5xx"), press(tea.KeyEnter)}},
		{name: "filter_outcome", acts: []act{tick(0), feed(mixed()), tick(time.Second), typed("/timeout"), press(tea.KeyEnter)}},
		{name: "filter_nothing", acts: []act{tick(0), feed(mixed()), tick(time.Second), typed("/zzz"), press(tea.KeyEnter)}},
		{name: "filter_cancelled", acts: []act{tick(0), feed(mixed()), tick(time.Second), typed("/orders"), press(tea.KeyEsc)}},
		{name: "paused", acts: []act{tick(0), feed(mixed()[:3]), tick(time.Second), typed(" "), feed(mixed()[3:]), tick(2 * time.Second)}},
		{name: "resumed", acts: []act{tick(0), feed(mixed()[:3]), tick(time.Second), typed(" "), feed(mixed()[3:]), tick(2 * time.Second), typed(" "), tick(3 * time.Second)}},
		{name: "cleared", acts: []act{tick(0), feed(mixed()), tick(time.Second), typed("c")}},
		{name: "help", acts: []act{tick(0), feed(mixed()), tick(time.Second), typed("?")}},
		{name: "narrow", size: [2]int{60, 14}, acts: []act{tick(0), feed(mixed()), tick(time.Second)}},
		{name: "resized", acts: []act{tick(0), feed(mixed()), tick(time.Second), {size: [2]int{72, 10}}}},
		{name: "detail_json", size: [2]int{100, 40}, acts: []act{tick(0), feed(mixed()), tick(time.Second), typed("g"), press(tea.KeyEnter)}},
		{name: "detail_binary", acts: []act{tick(0), feed(mixed()), tick(time.Second), press(tea.KeyEnter)}},
		{name: "detail_closed", acts: []act{tick(0), feed(mixed()), tick(time.Second), press(tea.KeyEnter), press(tea.KeyEsc)}},
		{name: "follows_new_rows", size: [2]int{100, 12}, acts: []act{tick(0), feed(many(20, 1)), tick(time.Second), feed(many(5, 21)), tick(2 * time.Second)}},
		{name: "scrolled_stays", size: [2]int{100, 12}, acts: []act{tick(0), feed(many(20, 1)), tick(time.Second), typed("kkk"), feed(many(5, 21)), tick(2 * time.Second)}},
		{name: "in_flight", acts: []act{tick(0),
			feed([]tap.Exchange{started(1, "/a"), started(2, "/b"), started(3, "/c")}), tick(time.Second)}},
		{name: "in_flight_ends", acts: []act{tick(0),
			feed([]tap.Exchange{started(1, "/a"), started(2, "/b"), started(3, "/c")}), tick(time.Second),
			feed([]tap.Exchange{ended(2, "/b", tap.OK, 201, 20*time.Millisecond), ended(1, "/a", tap.Timeout, 0, 30*time.Second)}), tick(31 * time.Second)}},
		{name: "in_flight_ends_into_filter", acts: []act{tick(0),
			feed([]tap.Exchange{ended(1, "/a", tap.OK, 500, time.Millisecond), started(2, "/b"), ended(3, "/c", tap.OK, 502, time.Millisecond), started(4, "/d")}),
			tick(time.Second), typed("/5xx"), press(tea.KeyEnter), typed("g"),
			feed([]tap.Exchange{ended(2, "/b", tap.OK, 503, 2*time.Second), ended(4, "/d", tap.OK, 200, 2*time.Second)}), tick(2 * time.Second)}},
		{name: "in_flight_end_dropped", queue: 2, acts: []act{tick(0),
			feed([]tap.Exchange{started(1, "/a")}), tick(time.Second),
			feed([]tap.Exchange{ended(1, "/a", tap.OK, 200, time.Millisecond), started(2, "/b"), started(3, "/c")}), tick(2 * time.Second)}},
		{name: "in_flight_start_dropped", queue: 2, acts: []act{tick(0),
			feed([]tap.Exchange{started(1, "/a"), started(2, "/b"), started(3, "/c"), ended(1, "/a", tap.OK, 200, time.Millisecond)}), tick(time.Second)}},
		{name: "in_flight_evicted_then_ends", buffer: 2, acts: []act{tick(0),
			feed([]tap.Exchange{started(1, "/a"), started(2, "/b"), started(3, "/c")}), tick(time.Second),
			feed([]tap.Exchange{ended(1, "/a", tap.OK, 200, time.Millisecond)}), tick(2 * time.Second)}},
		{name: "detail_pending", acts: []act{tick(0), feed([]tap.Exchange{started(1, "/a")}), tick(time.Second), press(tea.KeyEnter)}},
		{name: "streams", acts: []act{tick(0), feed(streamy()), tick(time.Second)}},
		{name: "streams_narrow", size: [2]int{80, 14}, acts: []act{tick(0), feed(streamy()), tick(time.Second)}},
		{name: "streams_filter_broken", acts: []act{tick(0), feed(streamy()), tick(time.Second), typed("/broken"), press(tea.KeyEnter)}},
		{name: "detail_streamed", size: [2]int{100, 30}, acts: []act{tick(0), feed(streamy()), tick(time.Second), typed("g"), press(tea.KeyEnter)}},
		{name: "detail_broken", size: [2]int{100, 30}, acts: []act{tick(0), feed(streamy()), tick(time.Second), typed("k"), press(tea.KeyEnter)}},
		{name: "ring_evicts_oldest", buffer: 5, acts: []act{tick(0), feed(many(8, 1)), tick(time.Second)}},
		{name: "queue_overflow_counts_drops", queue: 3, acts: []act{tick(0), feed(many(6, 1)), tick(time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := tt.size
			if size == [2]int{} {
				size = [2]int{100, 18}
			}
			f := tap.NewFeed(max(tt.queue, 100))
			if tt.queue > 0 {
				f = tap.NewFeed(tt.queue)
			}
			m := New(f, Config{Title: "nats://127.0.0.1:4222  >", Buffer: max(tt.buffer, 0), Location: time.UTC})
			tm := teatest.NewTestModel(t, syncModel{m}, teatest.WithInitialTermSize(size[0], size[1]))
			for _, a := range tt.acts {
				switch {
				case a.add != nil:
					// Intake adds to the feed while the program runs; a
					// tick sent after this takes them.
					for _, ex := range a.add {
						f.Add(ex)
					}
				case a.keys != "":
					for _, r := range a.keys {
						tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
					}
				case a.key != 0:
					tm.Send(tea.KeyMsg{Type: a.key})
				case a.size != [2]int{}:
					tm.Send(tea.WindowSizeMsg{Width: a.size[0], Height: a.size[1]})
				default:
					// Ticks are synchronous with the adds above only if
					// the program has handled everything sent before, so
					// wait for the model to reach this point.
					sendAndWait(t, tm, TickMsg{Time: t0.Add(a.tick)})
				}
			}
			if err := tm.Quit(); err != nil {
				t.Fatal(err)
			}
			final := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(syncModel).Model
			teatest.RequireEqualOutput(t, []byte(final.View()))
		})
	}
}

// syncModel is the model under test, plus an answer to syncMsg.
type syncModel struct{ Model }

func (s syncModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if m, ok := msg.(syncMsg); ok {
		close(m.done)
		return s, nil
	}
	next, cmd := s.Model.Update(msg)
	return syncModel{next.(Model)}, cmd
}

// syncMsg asks the program to report that it has handled every message
// sent before it.
type syncMsg struct{ done chan struct{} }

// sendAndWait sends msg and returns once the program has handled it, so
// that the feed changes a test makes next happen after it.
func sendAndWait(t *testing.T, tm *teatest.TestModel, msg tea.Msg) {
	t.Helper()
	done := make(chan struct{})
	tm.Send(msg)
	tm.Send(syncMsg{done})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("program did not handle the message")
	}
}

// BenchmarkTick is one display tick at 20,000 exchanges a second: a
// 100 ms batch of 2,000 taken into a full 10,000-row ring, then a render.
func BenchmarkTick(b *testing.B) {
	f := tap.NewFeed(tap.DefaultBuffer)
	m := New(f, Config{Location: time.UTC})
	next, _ := m.Update(tea.WindowSizeMsg{Width: 160, Height: 50})
	m = next.(Model)
	batch := many(2000, 1)
	for range 5 {
		for _, ex := range batch {
			f.Add(ex)
		}
		next, _ = m.Update(TickMsg{Time: t0})
		m = next.(Model)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, ex := range batch {
			f.Add(ex)
		}
		next, _ = m.Update(TickMsg{Time: t0.Add(time.Duration(i) * 100 * time.Millisecond)})
		m = next.(Model)
		_ = m.View()
	}
}
