package proxy_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/metropolis-dev/metro/internal/proxy"
)

// TestSmoke is the request path end to end in its simplest form: a
// routed request, an unknown route and a known path with another method.
func TestSmoke(t *testing.T) {
	e := newEnv(t, proxy.Config{})
	e.worker("users", map[string]http.HandlerFunc{
		"GET /users/{id}": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "user %s q=%s", r.PathValue("id"), r.URL.Query().Get("q"))
		},
	})
	resp, body := e.do("GET", "/users/42?q=x", "", nil)
	if resp.StatusCode != 200 || body != "user 42 q=x" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	resp, body = e.do("GET", "/nope", "", nil)
	checkProblem(t, resp, body, http.StatusNotFound)
	resp, body = e.do("POST", "/users/1", "", nil)
	checkProblem(t, resp, body, http.StatusMethodNotAllowed)
	if got := resp.Header.Get("Allow"); got != "GET, HEAD" {
		t.Errorf("Allow %q", got)
	}
}
