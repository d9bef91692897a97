package proxy_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// TestLogLinesWhole: the gateway's own log and its access log share one
// output, as they do on metro gateway's stderr. Under load, with both
// writing at once and the access log's batches far past its buffer, every
// line that comes out is one whole JSON object.
func TestLogLinesWhole(t *testing.T) {
	ns := natstest.Run(t)
	var out metrotest.LockedBuffer
	logs := proxy.NewLogWriter(&out)
	app := slog.New(slog.NewJSONHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	s, err := proxy.NewServer(ctx, proxy.ServerConfig{
		Listen:    "127.0.0.1:0",
		NATSURL:   ns.ClientURL(),
		Gateway:   proxy.Config{DiscoveryInterval: 50 * time.Millisecond},
		Logger:    app,
		AccessLog: logs,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("gateway: %v", err)
			}
		}
	}
	t.Cleanup(stop)

	// Long paths make long access lines (the path and the 404's detail
	// both carry it), so the batch buffer fills many times over.
	path := "/" + strings.Repeat("p", 1500)
	base := "http://" + s.Addr().String()
	const clients, requests = 4, 150
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range requests {
				resp, err := http.Get(base + path)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("status %d, want 404", resp.StatusCode)
				}
				app.Info("route added", "detail", strings.Repeat("a", 700))
			}
		})
	}
	wg.Wait()
	stop()

	var access, own int
	for i, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(l), &entry); err != nil {
			t.Fatalf("line %d is not one JSON object (%v): %.200q", i+1, err, l)
		}
		switch entry["msg"] {
		case "request":
			access++
		case "route added":
			own++
		}
	}
	if access != clients*requests || own == 0 {
		t.Errorf("%d access lines (want %d) and %d of the gateway's own", access, clients*requests, own)
	}
	t.Logf("%d access lines, %d others", access, own)
}
