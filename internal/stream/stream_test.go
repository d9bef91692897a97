package stream

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/natstest"
)

// pair connects a holder and a reader to one real server.
func pair(t *testing.T) (*Mux, *Mux) {
	s := natstest.Run(t)
	return For(natstest.Connect(t, s)), For(natstest.Connect(t, s))
}

// open starts a stream on hold and its reader on read, whose first part
// is first; both end with the test, and ctx with them.
func open(t *testing.T, hold, read *Mux, first []byte) (context.Context, *Source, *Reader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	src, err := hold.NewSource()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	r, err := read.NewReader(ctx, src.Subject(), first)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return ctx, src, r
}

func TestTransferWhole(t *testing.T) {
	hold, read := pair(t)
	body := make([]byte, 5<<20+123)
	rand.Read(body)
	ctx, src, r := open(t, hold, read, body[:1000])
	errc := make(chan error, 1)
	go func() {
		if _, err := src.SendParts(ctx, body[1000:], true); err != nil {
			errc <- err
			return
		}
		errc <- src.End(ctx)
	}()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("sending: %v", err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("got %d bytes, want %d, equal prefix %d", len(got), len(body), commonPrefix(got, body))
	}
	// The first part, then ceil(rest/part), then the end.
	want := 1 + (len(body)-1000+MaxPart-1)/MaxPart + 1
	if r.Parts != want {
		t.Errorf("parts = %d, want %d", r.Parts, want)
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// The reader's window bounds what the source sends ahead: with the reader
// not reading, the source's writes block after Window parts.
func TestWindowBoundsTheSource(t *testing.T) {
	hold, read := pair(t)
	ctx, src, r := open(t, hold, read, []byte("x"))
	if b, err := r.Next(); err != nil || string(b) != "x" {
		t.Fatalf("first part = %q, %v", b, err)
	}
	part := []byte("part")
	for i := range Window {
		if err := src.Send(ctx, part); err != nil {
			t.Fatalf("part %d of the window: %v", i+1, err)
		}
	}
	if err := read.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	short, stop := context.WithTimeout(ctx, 300*time.Millisecond)
	defer stop()
	if err := src.Send(short, part); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a part past the window was sent (%v): the reader's window does not bound the source", err)
	}
	// Reading one part lets one more through.
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if err := src.Send(ctx, part); err != nil {
		t.Fatalf("after a read: %v", err)
	}
}

func TestReaderCancels(t *testing.T) {
	hold, read := pair(t)
	ctx, src, r := open(t, hold, read, nil)
	r.Close()
	select {
	case <-src.Cancelled():
	case <-ctx.Done():
		t.Fatal("the source never learned that the reader cancelled")
	}
	if err := src.Send(ctx, []byte("late")); !errors.Is(err, ErrCancelled) {
		t.Fatalf("Send after cancel = %v, want ErrCancelled", err)
	}
}

// A source whose process dies cannot say so; its reader learns it from
// the server at the next ping, long before its deadline.
func TestSourceGoneBreaksTheStream(t *testing.T) {
	s := natstest.Run(t)
	holdConn := natstest.Connect(t, s)
	read := For(natstest.Connect(t, s))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src, err := For(holdConn).NewSource()
	if err != nil {
		t.Fatal(err)
	}
	r, err := read.NewReader(ctx, src.Subject(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		_ = src.Send(ctx, []byte("one"))
		holdConn.Close()
	}()
	if b, err := r.Next(); err != nil || string(b) != "one" {
		t.Fatalf("first part = %q, %v", b, err)
	}
	_, err = r.Next()
	if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), "gone") {
		t.Fatalf("after the source died: %v, want a broken stream saying the sender is gone", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the reader waited for its deadline")
	}
}

func TestSourceFails(t *testing.T) {
	hold, read := pair(t)
	ctx, src, r := open(t, hold, read, nil)
	go func() {
		_ = src.Send(ctx, []byte("half"))
		_ = src.Fail(ctx, "the handler panicked")
	}()
	got, err := io.ReadAll(r)
	if string(got) != "half" || !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), "the handler panicked") {
		t.Fatalf("got %q, %v", got, err)
	}
}

// A part that skips a number means one was lost: NATS does not send it
// again, so the body cannot be complete.
func TestLostPartBreaksTheStream(t *testing.T) {
	s := natstest.Run(t)
	nc := natstest.Connect(t, s)
	read := For(natstest.Connect(t, s))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pulls := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(Root+"._.test.abc", pulls)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	r, err := read.NewReader(ctx, Root+"._.test.abc", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		p := <-pulls
		_ = nc.PublishMsg(&nats.Msg{Subject: p.Reply, Header: nats.Header{HeaderPart: {"2"}}, Data: []byte("skipped one")})
	}()
	if _, err := r.Next(); !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), "lost") {
		t.Fatalf("got %v, want a lost part", err)
	}
}

// Someone else subscribed to the stream space (metro tap) keeps the server
// from answering pings for a source that died; the source's own answers
// to pings then tell a live one from a dead one: the dead one's stream
// breaks, the live one's stays open however long it is idle.
func TestWatchedStreams(t *testing.T) {
	s := natstest.Run(t)
	watcher := natstest.Connect(t, s)
	if _, err := watcher.Subscribe(Root+".>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := watcher.Flush(); err != nil {
		t.Fatal(err)
	}
	read := For(natstest.Connect(t, s))
	t.Run("dead", func(t *testing.T) {
		t.Parallel()
		holdConn := natstest.Connect(t, s)
		ctx, src, r := open(t, For(holdConn), read, nil)
		go func() {
			_ = src.Send(ctx, []byte("one"))
			holdConn.Close()
		}()
		if b, err := r.Next(); err != nil || string(b) != "one" {
			t.Fatalf("first part = %q, %v", b, err)
		}
		if _, err := r.Next(); !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), "not answered") {
			t.Fatalf("after the source died: %v, want a broken stream whose sender does not answer", err)
		}
	})
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		ctx, src, r := open(t, For(natstest.Connect(t, s)), read, nil)
		sent := make(chan error, 1)
		go func() {
			// Idle for longer than a ping may go unanswered, alive.
			time.Sleep(silentAfter + 2*pingAfter)
			sent <- src.Send(ctx, []byte("late"))
		}()
		if b, err := r.Next(); err != nil || string(b) != "late" {
			t.Fatalf("after an idle spell: %q, %v", b, err)
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
	})
}

// TestProbeSubject: a probe lies in its identity's branch, where a locked
// bus lets it subscribe and publish, and is no stream subject: one more
// token than the branch, where a stream subject has two.
func TestProbeSubject(t *testing.T) {
	s := natstest.Run(t)
	for _, tt := range []struct {
		prefix, branch string
	}{
		{"", Root + "._."},
		{"_INBOX.catalog", Root + ".catalog."},
	} {
		var opts []nats.Option
		if tt.prefix != "" {
			opts = append(opts, nats.CustomInboxPrefix(tt.prefix))
		}
		nc := natstest.Connect(t, s, opts...)
		p, q := ProbeSubject(nc), ProbeSubject(nc)
		rest, ok := strings.CutPrefix(p, tt.branch)
		if !ok || rest == "" || strings.Contains(rest, ".") || p == q {
			t.Errorf("inbox prefix %q: probes %q and %q, want each a fresh token under %q", tt.prefix, p, q, tt.branch)
		}
	}
}
