package proxy_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/metropolis-dev/metro/internal/proxy"
)

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
	t.Logf("%d %s %v", resp.StatusCode, body, resp.Header)
	resp, body = e.do("POST", "/users/1", "", nil)
	t.Logf("%d %s %v", resp.StatusCode, body, resp.Header)
}
