package proxy_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// TestDeadRouteWithWatcher: a plain subscriber on every subject (what
// metro tap is) counts as interest to NATS, so NATS sends no "no
// responders" for a route whose workers are gone; the gateway must still
// answer 503 with Retry-After, from its route table, instead of a 504
// after the full timeout.
func TestDeadRouteWithWatcher(t *testing.T) {
	e := newEnv(t, proxy.Config{Timeout: 2 * time.Second})
	stop := e.worker("gone", map[string]http.HandlerFunc{
		"GET /gone": func(w http.ResponseWriter, r *http.Request) {},
	})
	watcher := natstest.Connect(t, e.ns)
	sub, err := watcher.SubscribeSync(">")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	watcher.Flush()
	if resp, _ := e.do("GET", "/gone", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("live route: %d", resp.StatusCode)
	}
	stop()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, body := e.do("GET", "/gone", "", nil)
		if resp.StatusCode == http.StatusServiceUnavailable {
			checkProblem(t, resp, body, http.StatusServiceUnavailable)
			if resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			return
		}
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("dead route: %d %s", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			t.Fatal("a route with no live worker still times out instead of 503")
		}
	}
}

// TestHeadKeepsContentLength: a HEAD answer has no body, and its
// Content-Length is the one the handler gave for the GET body.
func TestHeadKeepsContentLength(t *testing.T) {
	e := newEnv(t, proxy.Config{})
	e.worker("h", map[string]http.HandlerFunc{
		"GET /doc": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "5")
			if r.Method == http.MethodGet {
				w.Write([]byte("hello"))
			}
		},
	})
	for _, method := range []string{"GET", "HEAD"} {
		resp, body := e.do(method, "/doc", "", nil)
		if resp.StatusCode != http.StatusOK || resp.ContentLength != 5 {
			t.Errorf("%s: status %d, Content-Length %d, want 200 and 5", method, resp.StatusCode, resp.ContentLength)
		}
		if want := map[string]string{"GET": "hello", "HEAD": ""}[method]; body != want {
			t.Errorf("%s: body %q, want %q", method, body, want)
		}
	}
}

// TestOverlappingWorkers: worker A serves GET /x/{id}, worker B the more
// specific GET /x/special. Both subscriptions match x.special.GET and each
// queue group gets a copy; Metro-Route tells A to leave it to B, so every
// client gets B's answer, as one ServeMux over both would give.
func TestOverlappingWorkers(t *testing.T) {
	e := newEnv(t, proxy.Config{})
	e.worker("a", map[string]http.HandlerFunc{
		"GET /x/{id}": func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("a:" + r.PathValue("id"))) },
	})
	e.worker("b", map[string]http.HandlerFunc{
		"GET /x/special": func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("b")) },
	})
	for i := 0; i < 50; i++ {
		if _, body := e.do("GET", "/x/special", "", nil); body != "b" {
			t.Fatalf("request %d to /x/special answered %q, want b", i, body)
		}
		if _, body := e.do("GET", "/x/other", "", nil); body != "a:other" {
			t.Fatalf("request %d to /x/other answered %q, want a:other", i, body)
		}
	}
}
