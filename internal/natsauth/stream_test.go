package natsauth_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natsauth"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// echoBody answers with the request body as it reads it: the reply
// streams while the body still arrives.
func echoBody(rw http.ResponseWriter, r *http.Request) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			if _, werr := rw.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
	}
}

// TestStreamsOnALockedBus: a body streams both ways through the gateway
// under metro's permissions (PROTOCOL.md section 9): the worker pulls the
// request body from the gateway's stream and the gateway pulls the reply
// from the worker's, each answering every pull once.
func TestStreamsOnALockedBus(t *testing.T) {
	b := startBus(t, natsauth.Project{Workers: []natsauth.Worker{{Name: "files", Routes: []string{"POST /files"}, Calls: []string{}}}})
	quiet := slog.New(slog.DiscardHandler)
	t.Setenv("NATS_NKEY", b.Seed(natsauth.WorkerID("files")))
	metrotest.StartWorker(t, b.ClientURL(), "files", metrotest.Routes(map[string]http.HandlerFunc{
		"POST /files": echoBody,
	}), metro.WithLogger(quiet))
	gw, srv := metrotest.StartGateway(t, b.Connect(t, "gateway"), proxy.Config{MaxBody: 16 << 20, DiscoveryInterval: 50 * time.Millisecond, Logger: quiet})
	metrotest.WaitRoutes(t, gw, "POST /files")
	body := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16+7)
	req, _ := http.NewRequest("POST", srv.URL+"/files", struct{ io.Reader }{bytes.NewReader(body)})
	resp, got := metrotest.Do(t, req)
	if resp.StatusCode != 200 || got != string(body) {
		t.Fatalf("status %d, %d bytes back of %d (%.100q)", resp.StatusCode, len(got), len(body), got)
	}
}
