package mock

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
	"github.com/metropolis-dev/metro/internal/recording"
)

func ex(worker, method, path, query, reqBody string, status int, body string) recording.Exchange {
	subj := strings.ReplaceAll(strings.Trim(path, "/"), "/", ".") + "." + method
	return recording.Exchange{
		Subject: subj, Method: method, Path: path, Query: query, Worker: worker, Outcome: "ok",
		Request: recording.Message{Body: []byte(reqBody)},
		Status:  status,
		Reply:   &recording.Message{Header: http.Header{"Content-Type": {"application/json"}, "X-Kept": {"yes"}}, Body: []byte(body)},
	}
}

func session() []recording.Exchange {
	exs := []recording.Exchange{
		ex("catalog", "GET", "/products/apple", "", "", 200, `{"id":"apple"}`),
		ex("catalog", "GET", "/products", "sort=name&limit=2", "", 200, `["a","b"]`),
		ex("catalog", "POST", "/products", "", `{"id":"kiwi","price":5}`, 201, `{"id":"kiwi"}`),
		ex("catalog", "GET", "/products/kiwi", "", "", 404, `{"status":404}`),
		ex("catalog", "GET", "/products/kiwi", "", "", 200, `{"id":"kiwi","v":1}`),
		ex("orders", "GET", "/orders/1", "", "", 200, `{}`),
		ex("", "GET", "/products/banana", "", "", 200, `{"id":"banana"}`), // worker unknown, on a catalog route
	}
	exs[0].Route = "GET /products/{id}"
	exs[0].RequestID = "first"
	for i := range exs {
		exs[i].Line = i + 1
	}
	return exs
}

func TestStand(t *testing.T) {
	s, err := New("catalog", "rec.ndjson", session())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Patterns(), []string{"GET /products", "GET /products/{id}", "POST /products"}; !reflect.DeepEqual(got, want) {
		t.Errorf("patterns %q, want %q", got, want)
	}
	do := func(method, target, body string) (int, string, http.Header) {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
		return rec.Code, rec.Body.String(), rec.Header()
	}
	tests := []struct {
		name, method, target, body string
		status                     int
		want                       string
	}{
		{"recorded", "GET", "/products/apple", "", 200, `{"id":"apple"}`},
		{"query in another order", "GET", "/products?limit=2&sort=name", "", 200, `["a","b"]`},
		{"JSON body in another form", "POST", "/products", `{ "price": 5, "id": "kiwi" }`, 201, `{"id":"kiwi"}`},
		{"a sequence plays in order", "GET", "/products/kiwi", "", 404, `{"status":404}`},
		{"then the next", "GET", "/products/kiwi", "", 200, `{"id":"kiwi","v":1}`},
		{"and the last repeats", "GET", "/products/kiwi", "", 200, `{"id":"kiwi","v":1}`},
		{"worker unknown but on its route", "GET", "/products/banana", "", 200, `{"id":"banana"}`},
		{"HEAD answered from GET", "HEAD", "/products/apple", "", 200, `{"id":"apple"}`},
		{"another worker's exchange", "GET", "/orders/1", "", 404, "nearest recorded request is"},
		{"unrecorded", "GET", "/products/appel", "", 404, "records no GET /products/appel for worker catalog; the nearest recorded request is GET /products/apple (rec.ndjson:1)"},
		{"other body", "POST", "/products", `{"id":"fig"}`, 404, "records POST /products for worker catalog, but not with this body; the nearest is rec.ndjson:3"},
	}
	for _, tt := range tests {
		code, body, h := do(tt.method, tt.target, tt.body)
		if code != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s, want %d %s", tt.name, code, body, tt.status, tt.want)
		}
		if code == 404 && tt.status == 404 && strings.Contains(tt.want, "nearest") {
			var p map[string]any
			if err := json.Unmarshal([]byte(body), &p); err != nil || h.Get("Content-Type") != "application/problem+json" || p["status"] != 404.0 {
				t.Errorf("%s: not a problem reply: %s %s", tt.name, h.Get("Content-Type"), body)
			}
		} else if h.Get("X-Kept") != "yes" {
			t.Errorf("%s: recorded headers not kept: %v", tt.name, h)
		}
	}

	if _, err := New("billing", "rec.ndjson", session()); err == nil || !strings.Contains(err.Error(), "no reply from worker billing (it has replies from catalog, orders)") {
		t.Errorf("unknown worker: %v", err)
	}
}

// A request carrying a recorded id gets that exchange's reply, whatever
// came before: the replay of one client's request does not take the
// reply recorded for another's.
func TestStandByRequestID(t *testing.T) {
	exs := []recording.Exchange{
		ex("catalog", "GET", "/products/kiwi", "", "", 404, `{"request_id":"a"}`),
		ex("catalog", "GET", "/products/kiwi", "", "", 404, `{"request_id":"b"}`),
	}
	exs[0].RequestID, exs[1].RequestID = "a", "b"
	s, err := New("catalog", "rec.ndjson", exs)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"b", "a", "b"} {
		req := httptest.NewRequest("GET", "/products/kiwi", nil)
		req.Header.Set("Metro-Request-Id", id)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if want := `{"request_id":"` + id + `"}`; rec.Body.String() != want {
			t.Errorf("id %s: %s, want %s", id, rec.Body, want)
		}
	}
}

// Run serves the stand-in as a real worker: the gateway learns its
// routes from its announcement and requests reach it over NATS.
func TestRunBehindGateway(t *testing.T) {
	ns := natstest.Run(t)
	file := filepath.Join(t.TempDir(), "rec.ndjson")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := recording.NewWriter(f, nil)
	for _, e := range session() {
		w.Write(e)
	}
	w.Flush()
	f.Close()

	gw, srv := metrotest.StartGateway(t, natstest.Connect(t, ns), proxy.Config{Timeout: 20 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Worker: "catalog", File: file, URL: ns.ClientURL(), Logger: slog.New(slog.DiscardHandler)})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	metrotest.WaitRoutes(t, gw, "GET /products/{id}", "GET /products", "POST /products")
	resp, err := http.Get(srv.URL + "/products/apple")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != `{"id":"apple"}` || resp.Header.Get("X-Kept") != "yes" {
		t.Errorf("GET /products/apple through the gateway: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	resp, err = http.Get(srv.URL + "/products/durian")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), "nearest recorded request is GET /products/") || !strings.Contains(string(b), `"request_id":"`) {
		t.Errorf("unrecorded through the gateway: %d %s", resp.StatusCode, b)
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.ndjson")
	os.WriteFile(bad, []byte("{\"subject\":\n"), 0o644)
	err := Run(t.Context(), Options{Worker: "catalog", File: bad})
	if err == nil || !strings.HasPrefix(err.Error(), bad+":1: ") {
		t.Errorf("truncated recording: %v", err)
	}
}
