package tap

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
	"github.com/metropolis-dev/metro/internal/recording"
)

// TestRecord: requests through a real gateway to an SDK worker, tapped
// with a recorder, end up in the file with whole binary bodies and no
// secret: a bearer token, a cookie, a header named to redact, and a
// Set-Cookie of the reply.
func TestRecord(t *testing.T) {
	ns := natstest.Run(t)
	blob := make([]byte, 3*MaxBody+17) // longer than the display keeps
	rand.Read(blob)
	metrotest.StartWorker(t, ns.ClientURL(), "files", metrotest.Routes(map[string]http.HandlerFunc{
		"GET /blob/{id}": func(w http.ResponseWriter, r *http.Request) {
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "n3w-c00kie"})
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(blob)
		},
		"POST /echo": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
			w.WriteHeader(http.StatusCreated)
			w.Write(b)
		},
	}))
	gw, srv := metrotest.StartGateway(t, natstest.Connect(t, ns), proxy.Config{Timeout: 20 * time.Second})
	metrotest.WaitRoutes(t, gw, "GET /blob/{id}", "POST /echo")

	in, err := Subscribe(natstest.Connect(t, ns), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "rec.ndjson")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in.SetRecorder(NewFileRecorder(f, []string{"x-api-key"}))
	var shown bytes.Buffer
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	go func() { done <- WriteNDJSON(ctx, in, &shown, 2) }()

	req, _ := http.NewRequest("GET", srv.URL+"/blob/1?size=big", nil)
	req.Header.Set("Authorization", "Bearer s3cr3t-t0ken")
	req.AddCookie(&http.Cookie{Name: "session", Value: "0ld-c00kie"})
	req.Header.Set("X-Api-Key", "k3y-value")
	if resp, body := metrotest.Do(t, req); resp.StatusCode != 200 || body != string(blob) {
		t.Fatalf("GET /blob/1: %d, %d bytes", resp.StatusCode, len(body))
	}
	post := []byte{0, 1, 2, 0xfe, 0xff, 'x'}
	req, _ = http.NewRequest("POST", srv.URL+"/echo", bytes.NewReader(post))
	req.Header.Set("Content-Type", "application/x-binary")
	if resp, _ := metrotest.Do(t, req); resp.StatusCode != 201 {
		t.Fatalf("POST /echo: %d", resp.StatusCode)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3cr3t-t0ken", "0ld-c00kie", "n3w-c00kie", "k3y-value"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the recording holds %q", secret)
		}
	}
	exs, err := recording.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) != 2 {
		t.Fatalf("%d exchanges recorded, want 2:\n%s", len(exs), raw)
	}
	get, echo := exs[0], exs[1]
	if get.Method != "GET" || get.Path != "/blob/1" || get.Query != "size=big" || get.Status != 200 || !get.Replied() {
		t.Errorf("GET recorded as %+v", get)
	}
	if !bytes.Equal(get.Reply.Body, blob) {
		t.Errorf("blob recorded as %d bytes, not the %d sent", len(get.Reply.Body), len(blob))
	}
	for h, m := range map[string]http.Header{"Authorization": get.Request.Header, "Cookie": get.Request.Header, "X-Api-Key": get.Request.Header, "Set-Cookie": get.Reply.Header} {
		if v := m.Get(h); v != recording.Redacted {
			t.Errorf("%s recorded as %q, want %q", h, v, recording.Redacted)
		}
	}
	for k := range get.Request.Header {
		if strings.HasPrefix(k, "Metro-") {
			t.Errorf("protocol header %s recorded", k)
		}
	}
	if !bytes.Equal(echo.Request.Body, post) || !bytes.Equal(echo.Reply.Body, post) || echo.Status != 201 {
		t.Errorf("POST recorded as %+v", echo)
	}
	// The display still gets what it always did: at most MaxBody.
	if !strings.Contains(shown.String(), `"reply_bytes":`) || strings.Count(shown.String(), "\n") != 2 {
		t.Errorf("NDJSON output changed: %s", shown.String())
	}
}
