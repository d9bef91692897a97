package proxy

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
)

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestUnauthenticatedListenersStayLocal: the embedded NATS server and an
// admin address that serves pprof bind loopback when no host is given,
// and binding them elsewhere is logged as a warning. Without pprof, the
// admin address keeps its meaning (every interface, for probes).
func TestUnauthenticatedListenersStayLocal(t *testing.T) {
	tests := []struct {
		name      string
		embed     string
		admin     string
		pprof     bool
		natsLocal bool // the embedded server listens on loopback only
		admLocal  bool
		warn      string // "" for no warning
	}{
		{"defaults: no host", "127.0.0.1:0", ":0", true, true, true, ""},
		{"embed with no host", ":0", "127.0.0.1:0", false, true, true, ""},
		{"admin without pprof keeps every interface", "127.0.0.1:0", ":0", false, true, false, ""},
		{"embed on every interface, asked for", "0.0.0.0:0", "127.0.0.1:0", false, false, true, "embedded NATS"},
		{"pprof on every interface, asked for", "localhost:0", "0.0.0.0:0", true, true, false, "pprof"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs lockedLog
			s, err := NewServer(context.Background(), ServerConfig{
				Listen:    "127.0.0.1:0",
				Admin:     tt.admin,
				EmbedNATS: tt.embed,
				Pprof:     tt.pprof,
				Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.closeAll()
			natsAddr := s.ns.Addr().(*net.TCPAddr)
			if got := natsAddr.IP.IsLoopback(); got != tt.natsLocal {
				t.Errorf("embedded NATS listens on %s", natsAddr)
			}
			admAddr := s.AdminAddr().(*net.TCPAddr)
			if got := admAddr.IP.IsLoopback(); got != tt.admLocal {
				t.Errorf("admin listens on %s", admAddr)
			}
			warned := strings.Contains(logs.String(), "level=WARN")
			if warned != (tt.warn != "") || !strings.Contains(logs.String(), tt.warn) {
				t.Errorf("log %q, want a warning about %q", logs.String(), tt.warn)
			}
		})
	}
}
