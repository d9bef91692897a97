package call_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/call"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// serve starts a real NATS server with SDK workers answering the routes
// the tests call, and returns a connection to it.
func serve(t *testing.T) *nats.Conn {
	t.Helper()
	s := natstest.Run(t)
	release := make(chan struct{})
	start := func(name string, routes map[string]http.HandlerFunc, opts ...metro.Option) {
		opts = append([]metro.Option{metro.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
		metrotest.StartWorker(t, s.ClientURL(), name, metrotest.Routes(routes), opts...)
	}
	start("items", map[string]http.HandlerFunc{
		"GET /items/{id}": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Add("X-Multi", "b")
			w.Header().Add("X-Multi", "a")
			io.WriteString(w, "item "+r.PathValue("id")+" q="+r.URL.RawQuery+" thing="+strings.Join(r.Header.Values("X-Thing"), ",")+"\n")
		},
		"POST /echo": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
			w.WriteHeader(http.StatusCreated)
			io.Copy(w, r.Body)
		},
		"GET /boom": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		},
		"GET /slow": func(w http.ResponseWriter, r *http.Request) { <-release },
	})
	start("api-items", map[string]http.HandlerFunc{
		"GET /items/{id}": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "api item "+r.PathValue("id")+"\n")
		},
	}, metro.WithPrefix("api"))
	t.Cleanup(func() { close(release) }) // runs before the workers stop
	return natstest.Connect(t, s)
}

func TestDoUsageErrors(t *testing.T) {
	nc := serve(t)
	for _, tt := range []struct {
		name string
		o    call.Options
	}{
		{"header without colon", call.Options{Headers: []string{"X-Thing"}}},
		{"header without name", call.Options{Headers: []string{": value"}}},
		{"header name with space", call.Options{Headers: []string{"X Thing: value"}}},
		{"header name not a token", call.Options{Headers: []string{"X(Thing): value"}}},
		{"header value with a line break", call.Options{Headers: []string{"X-Thing: a\r\nX-Other: b"}}},
		{"header value with NUL", call.Options{Headers: []string{"X-Thing: a\x00b"}}},
		{"second header bad", call.Options{Headers: []string{"X-Good: 1", "bad"}}},
		{"relative path", call.Options{Path: "items/1"}},
		{"empty path", call.Options{Path: "-"}},
		{"method with a space", call.Options{Method: "GE T"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			if o.Method == "" {
				o.Method = "GET"
			}
			switch o.Path {
			case "":
				o.Path = "/items/1"
			case "-":
				o.Path = ""
			}
			if err := o.Validate(); !errors.Is(err, call.ErrUsage) {
				t.Errorf("Validate: %v, want ErrUsage", err)
			}
			var out bytes.Buffer
			status, err := call.Do(t.Context(), nc, o, &out)
			if !errors.Is(err, call.ErrUsage) {
				t.Errorf("Do: %v, want ErrUsage", err)
			}
			if status != 0 || out.Len() != 0 {
				t.Errorf("Do answered %d %q after a usage error", status, out.String())
			}
		})
	}
}

func TestDoBody(t *testing.T) {
	nc := serve(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "body.bin")
	content := []byte("{\"a\":1}\n\x00\xff binary tail")
	if err := os.WriteFile(file, content, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		data  string
		stdin string
		want  string
	}{
		{"none", "", "", ""},
		{"literal", `{"items":[1]}`, "", `{"items":[1]}`},
		{"file", "@" + file, "", string(content)},
		{"stdin", "@-", "from stdin\n", "from stdin\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			o := call.Options{Method: "post", Path: "/echo", Data: tt.data, Stdin: strings.NewReader(tt.stdin),
				Headers: []string{"Content-Type: application/octet-stream"}}
			status, err := call.Do(t.Context(), nc, o, &out)
			if err != nil {
				t.Fatal(err)
			}
			if status != http.StatusCreated || out.String() != tt.want {
				t.Errorf("got %d %q, want 201 %q", status, out.String(), tt.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		var out bytes.Buffer
		o := call.Options{Method: "POST", Path: "/echo", Data: "@" + filepath.Join(dir, "nope")}
		_, err := call.Do(t.Context(), nc, o, &out)
		if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, call.ErrUsage) {
			t.Errorf("error %v, want one wrapping fs.ErrNotExist (not a usage error)", err)
		}
		if !strings.Contains(err.Error(), "nope") {
			t.Errorf("error %q does not name the file", err)
		}
	})
}

// TestDoOutput compares what Do prints, with and without -i, to golden
// files. Request ids are given with X-Request-Id so the output is stable.
func TestDoOutput(t *testing.T) {
	nc := serve(t)
	for _, tt := range []struct {
		name       string
		o          call.Options
		wantStatus int
	}{
		{"include", call.Options{Method: "GET", Path: "/items/42?q=1&r=%2F", Include: true,
			Headers: []string{"X-Request-Id: golden-1", "X-Thing: a", "X-Thing:b"}}, 200},
		{"body-only", call.Options{Method: "GET", Path: "/items/42", Headers: []string{"X-Request-Id: golden-2"}}, 200},
		{"prefix", call.Options{Method: "GET", Path: "/items/7", Prefix: "api", Include: true,
			Headers: []string{"X-Request-Id: golden-3"}}, 200},
		{"server-error", call.Options{Method: "GET", Path: "/boom", Include: true,
			Headers: []string{"X-Request-Id: golden-4"}}, 500},
		{"no-responders", call.Options{Method: "DELETE", Path: "/nobody/home", Include: true,
			Headers: []string{"X-Request-Id: golden-5"}}, 503},
		{"timeout", call.Options{Method: "GET", Path: "/slow", Include: true, Timeout: 200 * time.Millisecond,
			Headers: []string{"X-Request-Id: golden-6"}}, 504},
		{"bad-path", call.Options{Method: "GET", Path: "/a/../etc", Include: true,
			Headers: []string{"X-Request-Id: golden-7"}}, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			status, err := call.Do(t.Context(), nc, tt.o, &out)
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.wantStatus {
				t.Errorf("status %d, want %d", status, tt.wantStatus)
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("output differs from %s:\n got: %q\nwant: %q", golden, out.Bytes(), want)
			}
		})
	}
}

// TestDoCancelled: a cancelled call is an error, not a status.
func TestDoCancelled(t *testing.T) {
	nc := serve(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out bytes.Buffer
	_, err := call.Do(ctx, nc, call.Options{Method: "GET", Path: "/slow"}, &out)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "GET /slow") {
		t.Errorf("error %v, want context.Canceled naming the call", err)
	}
}

// FuzzValidate: whatever a header argument holds, it is either refused as
// misuse or is a name and value that cross a NATS header unchanged.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{"X-Thing: a", "X-Thing:", ": v", "a:b:c", "X\r\nY: z", "X: a\nb", "  X  :  y  ", "X:\tv", "É: v", "X: \x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		o := call.Options{Method: "GET", Path: "/x", Headers: []string{h}}
		err := o.Validate()
		if err != nil {
			if !errors.Is(err, call.ErrUsage) {
				t.Fatalf("Validate(%q) = %v, not a usage error", h, err)
			}
			return
		}
		k, v, ok := strings.Cut(h, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || strings.ContainsAny(k, " \t:()\"\x00") || strings.ContainsAny(v, "\r\n\x00") {
			t.Fatalf("Validate accepted header %q", h)
		}
	})
}
