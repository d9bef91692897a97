package metro_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/natstest"
)

// A worker calling another through the Transport streams both ways
// (PROTOCOL.md section 9): a reply twenty times what one message holds
// arrives whole, events arrive one by one, and a large body is read by
// the callee as it arrives.
func TestTransportStreams(t *testing.T) {
	s := natstest.Run(t)
	big := bytes.Repeat([]byte("metro streams "), 20<<20/14)
	next := make(chan struct{})
	w := calleeWorker(s.ClientURL(), "files")
	w.HandleFunc("GET /big", func(rw http.ResponseWriter, r *http.Request) { rw.Write(big) })
	w.HandleFunc("GET /events", func(rw http.ResponseWriter, r *http.Request) {
		for k := range 3 {
			fmt.Fprintf(rw, "event %d\n", k)
			http.NewResponseController(rw).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	})
	w.HandleFunc("POST /digest", func(rw http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(rw, "%d %x", n, h.Sum(nil))
	})
	runCallee(t, w)
	client := &http.Client{Transport: &metro.Transport{Conn: natstest.Connect(t, s)}}

	t.Run("reply", func(t *testing.T) {
		resp, err := client.Get("metro:///big")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("read %d bytes of %d: %v", len(got), len(big), err)
		}
	})

	t.Run("events", func(t *testing.T) {
		resp, err := client.Get("metro:///events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		for k := range 3 {
			// The handler writes event k+1 only once this one was read.
			line, err := br.ReadString('\n')
			if err != nil || line != fmt.Sprintf("event %d\n", k) {
				t.Fatalf("event %d: %q, %v", k, line, err)
			}
			next <- struct{}{}
		}
		if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
			t.Fatalf("after the events: %q, %v", rest, err)
		}
	})

	t.Run("upload", func(t *testing.T) {
		for _, known := range []bool{true, false} {
			var body io.Reader = bytes.NewReader(big)
			if !known {
				body = io.MultiReader(body) // no length
			}
			resp, err := client.Post("metro:///digest", "application/octet-stream", body)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("%d %x", len(big), sha256.Sum256(big)); resp.StatusCode != 200 || string(got) != want {
				t.Fatalf("length known %v: %d %q, want %q", known, resp.StatusCode, got, want)
			}
		}
	})

	t.Run("closed early", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "metro:///big", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := resp.Body.Read(make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if _, err := resp.Body.Read(make([]byte, 10)); err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("read after Close: %v", err)
		}
	})
}
