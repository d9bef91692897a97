package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
)

// TestCallStreams runs the real binary against an SDK worker whose
// replies and request bodies stream (PROTOCOL.md section 9).
func TestCallStreams(t *testing.T) {
	bin := buildCallBinary(t, t.TempDir())
	s := natstest.Run(t)
	url := s.ClientURL()
	big := metrotest.Bytes(5 << 20)
	const lines = 3
	seen := make(chan int)
	callWorker(t, url, "streams", map[string]http.HandlerFunc{
		// Each line is written and flushed, and the next waits until the
		// test has read this one from metro call's stdout: a call that
		// printed only at the end would never get past the first.
		"GET /lines": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			rc := http.NewResponseController(w)
			for i := range lines {
				fmt.Fprintf(w, "data: line %d\n\n", i)
				if err := rc.Flush(); err != nil {
					t.Errorf("flush: %v", err)
					return
				}
				select {
				case <-seen:
				case <-r.Context().Done():
					return
				}
			}
		},
		"GET /big": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(big)
		},
		"POST /sum": func(w http.ResponseWriter, r *http.Request) {
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
		},
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	run := func(stdin io.Reader, args ...string) ([]byte, string, error) {
		cmd := exec.CommandContext(ctx, bin, append([]string{"call"}, append(args, "--server", url)...)...)
		cmd.Env, cmd.Stdin = callEnv(), stdin
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.Bytes(), errOut.String(), err
	}

	t.Run("printed as parts arrive", func(t *testing.T) {
		cmd := exec.CommandContext(ctx, bin, "call", "GET", "/lines", "--server", url)
		cmd.Env = callEnv()
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(stdout)
		for i := range lines {
			var ev []string
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("event %d: %q, %v (stderr %s)", i, ev, err, errOut.String())
				}
				if l == "\n" {
					break
				}
				ev = append(ev, l)
			}
			if want := fmt.Sprintf("data: line %d\n", i); strings.Join(ev, "") != want {
				t.Fatalf("event %d = %q, want %q", i, ev, want)
			}
			seen <- i
		}
		if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
			t.Errorf("after the events: %q, %v", rest, err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("metro call: %v: %s", err, errOut.String())
		}
	})

	t.Run("a 5 MiB reply byte for byte", func(t *testing.T) {
		out, errOut, err := run(nil, "GET", "/big")
		if err != nil || !bytes.Equal(out, big) {
			t.Fatalf("metro call printed %d bytes (want %d), %v: %s", len(out), len(big), err, errOut)
		}
	})

	want := fmt.Sprintf("%d %x", len(big), sha256.Sum256(big))
	t.Run("a 5 MiB body from a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "big.bin")
		if err := os.WriteFile(file, big, 0o600); err != nil {
			t.Fatal(err)
		}
		// Five times what one NATS message holds: it arrives only as a
		// stream.
		out, errOut, err := run(nil, "POST", "/sum", "-d", "@"+file)
		if err != nil || string(out) != want {
			t.Fatalf("worker read %q, want %q; %v: %s", out, want, err, errOut)
		}
	})

	t.Run("a 5 MiB body from stdin", func(t *testing.T) {
		out, errOut, err := run(bytes.NewReader(big), "POST", "/sum", "-d", "@-")
		if err != nil || string(out) != want {
			t.Fatalf("worker read %q, want %q; %v: %s", out, want, err, errOut)
		}
	})
}
