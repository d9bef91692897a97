// Package stream carries a body of any size across NATS in parts that its
// reader pulls (PROTOCOL.md section 9): a Source holds a body and answers
// each pull with one part, a Reader pulls parts in order and presents them
// as an io.Reader. The gateway, the worker SDK and metro.Transport all
// stream through it; what it hides is the subjects, the window of pulls in
// flight, the part numbers, and telling a finished stream from a broken one.
package stream

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/metropolis-dev/metro/internal/wire"
)

// Header names of section 9.
const (
	HeaderStream  = wire.HeaderStream
	HeaderPart    = "Metro-Part"
	HeaderError   = "Metro-Stream-Error"
	HeaderControl = "Metro-Stream-Control"

	controlCancel = "cancel"
	controlPing   = "ping"
	controlPong   = "pong"
)

// Root is the subject space of stream subjects.
const Root = "$METRO.STREAM"

// MaxPart is the most bytes a part carries; a quarter of the server's
// max_payload when that is less. Each part costs a message through
// nats-server and a pull, so parts this large moved a 100 MiB body faster
// than 64 KiB ones (bench scenario x), while a window of them stays under
// 2 MiB per stream.
const MaxPart = 240 << 10

// Window is the number of pulls a Reader keeps in flight.
const Window = 8

// ErrBroken is wrapped by every error of a stream that ended without its
// end part: its body is not complete.
var ErrBroken = errors.New("stream broken")

// PartSize is the part size on nc: well under its max_payload.
func PartSize(nc *nats.Conn) int {
	if mp := int(nc.MaxPayload()); mp > 0 && mp/4 < MaxPart {
		return max(mp/4, 1)
	}
	return MaxPart
}

// Mux is the stream machinery of one connection: one subscription for
// the pulls to its sources and one for the parts to its readers, both made
// on first use, so a stream costs no subscription of its own and its
// subject exists before anyone learns it.
type Mux struct {
	nc *nats.Conn

	mu       sync.Mutex
	holdSub  *nats.Subscription
	holdBase string // "$METRO.STREAM.<owner>.<conn>."
	readSub  *nats.Subscription
	readBase string // "<inbox>."
	sources  map[string]*Source
	readers  map[string]*Reader
}

var (
	muxesMu sync.Mutex
	muxes   = map[*nats.Conn]*Mux{}
)

// For returns the Mux of nc, made on first use. Muxes of closed
// connections are dropped as new ones are made.
func For(nc *nats.Conn) *Mux {
	muxesMu.Lock()
	defer muxesMu.Unlock()
	if m, ok := muxes[nc]; ok {
		return m
	}
	for c := range muxes {
		if c.IsClosed() {
			delete(muxes, c)
		}
	}
	m := &Mux{nc: nc, sources: map[string]*Source{}, readers: map[string]*Reader{}}
	muxes[nc] = m
	return m
}

// owner is the owner token of stream subjects on nc: its identity on a
// locked bus, where its inbox prefix is "_INBOX.<identity>", else "_".
func owner(nc *nats.Conn) string {
	if p, ok := strings.CutPrefix(nc.Opts.InboxPrefix, "_INBOX."); ok && p != "" && !strings.ContainsAny(p, ".*> ") {
		return p
	}
	return "_"
}

// ProbeSubject is a fresh subject, outside every stream's, that nc's
// identity may both subscribe to and publish on, even on a locked bus:
// for finding out when a server has learnt of a subscription made through
// another server.
func ProbeSubject(nc *nats.Conn) string {
	return Root + "." + owner(nc) + "." + randomID()
}

// randomID is 128 random bits in hex: a stream subject is a capability on
// a bus where many may publish to the stream space.
func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (m *Mux) addSource(s *Source) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.holdSub == nil {
		base := Root + "." + owner(m.nc) + "." + nuid.Next() + "."
		sub, err := m.nc.Subscribe(base+"*", m.onPull)
		if err != nil {
			return "", err
		}
		sub.SetPendingLimits(-1, -1) // bounded by the window of each stream
		// Once: the server must know the subscription before a reader
		// pulls, which may come over another connection.
		if err := m.nc.Flush(); err != nil {
			sub.Unsubscribe()
			return "", err
		}
		m.holdSub, m.holdBase = sub, base
	}
	id := randomID()
	m.sources[id] = s
	return m.holdBase + id, nil
}

func (m *Mux) addReader(r *Reader) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.readSub == nil {
		base := m.nc.NewInbox() + "."
		sub, err := m.nc.Subscribe(base+">", m.onPart)
		if err != nil {
			return "", err
		}
		sub.SetPendingLimits(-1, -1)
		m.readSub, m.readBase = sub, base
	}
	id := nuid.Next()
	m.readers[id] = r
	return m.readBase + id + ".", nil
}

func (m *Mux) removeSource(id string) {
	m.mu.Lock()
	delete(m.sources, id)
	m.mu.Unlock()
}

func (m *Mux) removeReader(id string) {
	m.mu.Lock()
	delete(m.readers, id)
	m.mu.Unlock()
}

// onPull dispatches a message to a stream subject to its source.
func (m *Mux) onPull(msg *nats.Msg) {
	id := msg.Subject[strings.LastIndexByte(msg.Subject, '.')+1:]
	m.mu.Lock()
	s := m.sources[id]
	m.mu.Unlock()
	if s != nil {
		s.onMsg(msg)
		return
	}
	if msg.Reply != "" {
		// A stream this holder has dropped (it ended, failed, or its
		// exchange did): its reader would otherwise wait for its deadline.
		_ = m.nc.PublishMsg(&nats.Msg{Subject: msg.Reply, Header: nats.Header{HeaderError: []string{"the sender has no such stream (it has ended)"}}})
	}
}

// onPart dispatches a part (or the server's no-responders answer to a
// pull or ping) to its reader: "<inbox>.<reader>.<n>".
func (m *Mux) onPart(msg *nats.Msg) {
	rest := msg.Subject[len(m.readBase):]
	i := strings.IndexByte(rest, '.')
	if i < 0 {
		return
	}
	m.mu.Lock()
	r := m.readers[rest[:i]]
	m.mu.Unlock()
	if r != nil {
		r.onMsg(msg)
	}
}
