package call_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/call"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/stream"
)

// TestDoStreams: streamed replies and bodies through Do, in process.
func TestDoStreams(t *testing.T) {
	s := natstest.Run(t)
	seen := make(chan struct{})
	got := make(chan int64, 1)
	metrotest.StartWorker(t, s.ClientURL(), "streams", metrotest.Routes(map[string]http.HandlerFunc{
		"GET /lines": func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			for i := range 3 {
				fmt.Fprintf(w, "line %d\n", i)
				rc.Flush()
				select {
				case <-seen:
				case <-r.Context().Done():
					return
				}
			}
		},
		"GET /broken": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "the start\n")
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		},
		"POST /count": func(w http.ResponseWriter, r *http.Request) {
			h := sha256.New()
			var n int64
			told := false
			buf := make([]byte, 32<<10)
			for {
				k, err := r.Body.Read(buf)
				h.Write(buf[:k])
				n += int64(k)
				if n >= 1<<20 && !told {
					got <- n // the test writes the rest only now
					told = true
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
			}
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
		},
	}), metro.WithLogger(slog.New(slog.DiscardHandler)))
	nc := natstest.Connect(t, s)
	// A call that never gets its answer fails the test rather than hang it.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	// Output that buffers is flushed after each read: the handler writes
	// its next line only once the test has read the last from the pipe.
	t.Run("flushed as parts arrive", func(t *testing.T) {
		pr, pw := io.Pipe()
		out := bufio.NewWriter(pw)
		done := make(chan error, 1)
		go func() {
			_, err := call.Do(ctx, nc, call.Options{Method: "GET", Path: "/lines"}, out)
			pw.CloseWithError(err)
			done <- err
		}()
		br := bufio.NewReader(pr)
		for i := range 3 {
			line, err := br.ReadString('\n')
			if want := fmt.Sprintf("line %d\n", i); line != want || err != nil {
				t.Fatalf("line %d: %q, %v; want %q", i, line, err, want)
			}
			seen <- struct{}{}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a broken stream is an error", func(t *testing.T) {
		var out bufferWriter
		_, err := call.Do(ctx, nc, call.Options{Method: "GET", Path: "/broken"}, &out)
		if !errors.Is(err, stream.ErrBroken) || string(out) != "the start\n" {
			t.Fatalf("printed %q, error %v; want the start and an error wrapping stream.ErrBroken", out, err)
		}
	})

	// A file is read as it is sent: from a named pipe whose writer sends
	// the rest only once the worker has read the first MiB, a call that
	// read the file whole first would never send anything.
	t.Run("a file is sent as it is read", func(t *testing.T) {
		fifo := filepath.Join(t.TempDir(), "body")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, 3<<20)
		for i := range body {
			body[i] = byte(i * 7)
		}
		res := make(chan string, 1)
		go func() {
			var out bufferWriter
			_, err := call.Do(ctx, nc, call.Options{Method: "POST", Path: "/count", Data: "@" + fifo}, &out)
			res <- fmt.Sprint(string(out), err)
		}()
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		half := 3 << 19
		if _, err := f.Write(body[:half]); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
		case r := <-res:
			t.Fatalf("the call ended before the rest was written: %s", r)
		case <-ctx.Done():
			t.Fatal("the worker never got the first MiB: the call waits for the file's end before sending")
		}
		if _, err := f.Write(body[half:]); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if r, want := <-res, fmt.Sprintf("%d %x<nil>", len(body), sha256.Sum256(body)); r != want {
			t.Fatalf("worker read %s, want %s", r, want)
		}
	})
}

type bufferWriter []byte

func (b *bufferWriter) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}
