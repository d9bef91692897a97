package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
)

// TestStopEndsEventStreams: a gateway that stops ends the event streams
// it relays at once and whole, and cancels their handlers, instead of
// waiting for their route's timeout; a download in flight meanwhile is
// left to finish.
func TestStopEndsEventStreams(t *testing.T) {
	ns := natstest.Run(t)
	handlerDone := make(chan error, 1)
	release := make(chan struct{})
	metrotest.StartWorker(t, ns.ClientURL(), "feed", metrotest.Routes(map[string]http.HandlerFunc{
		"GET /events": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
			fmt.Fprint(w, ": open\n\n")
			if err := http.NewResponseController(w).Flush(); err != nil {
				handlerDone <- err
				return
			}
			<-r.Context().Done()
			handlerDone <- r.Context().Err()
		},
		"GET /download": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "first half,")
			http.NewResponseController(w).Flush()
			<-release
			fmt.Fprint(w, "second half")
		},
	}), metro.WithLogger(quiet))
	s, stop, wait := runServer(t, ns.ClientURL())
	base := "http://" + s.Addr().String()
	// Well within the gateway's 20s timeout: a stop that waited for it
	// fails here.
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	open := func(path, first string) *bufio.Reader {
		t.Helper()
		var resp *http.Response
		deadline := time.Now().Add(10 * time.Second)
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
			var err error
			resp, err = http.DefaultClient.Do(req)
			if err == nil && resp.StatusCode == http.StatusOK {
				break
			}
			if err == nil {
				resp.Body.Close()
			}
			if time.Now().After(deadline) { // the route not known yet
				t.Fatalf("GET %s: %v %v", path, resp, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Cleanup(func() { resp.Body.Close() })
		br := bufio.NewReader(resp.Body)
		b := make([]byte, len(first))
		if _, err := io.ReadFull(br, b); err != nil || string(b) != first {
			t.Fatalf("GET %s: %q %v, want %q first", path, b, err, first)
		}
		return br
	}
	events := open("/events", ": open\n\n")
	download := open("/download", "first half,")

	stop()
	rest, err := io.ReadAll(events)
	if err != nil || len(rest) != 0 {
		t.Errorf("the event stream ended with %q %v, want its whole end", rest, err)
	}
	select {
	case err := <-handlerDone:
		if err != context.Canceled {
			t.Errorf("the handler's context ended with %v, want cancelled", err)
		}
	case <-ctx.Done():
		t.Fatal("the event stream's handler still runs")
	}

	close(release)
	rest, err = io.ReadAll(download)
	if err != nil || string(rest) != "second half" {
		t.Errorf("the download ended with %q %v, want the rest of it", rest, err)
	}
	if err := wait(); err != nil {
		t.Errorf("Run: %v", err)
	}
}
