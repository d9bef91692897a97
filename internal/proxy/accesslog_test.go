package proxy_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// lines splits what was logged so far into entries.
func lines(b *metrotest.LockedBuffer) []string {
	s := strings.TrimSpace(b.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestAccessLog: one JSON entry per request with what an operator needs:
// request id, method, path, route pattern, subject, status, duration and
// bytes, plus the error of a failed one.
func TestAccessLog(t *testing.T) {
	var buf metrotest.LockedBuffer
	e := newEnv(t, proxy.Config{AccessLog: slog.New(slog.NewJSONHandler(&buf, nil))})
	e.worker("users", map[string]http.HandlerFunc{
		"GET /users/{id}": func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) },
	})
	before := len(lines(&buf))
	e.do("GET", "/users/a%20b?x=1", "", map[string]string{"X-Request-Id": "log-1"})
	e.do("GET", "/nowhere", "", map[string]string{"X-Request-Id": "log-2"})
	lines := lines(&buf)[before:]
	if len(lines) != 2 {
		t.Fatalf("%d entries, want 2:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	tests := []map[string]any{
		{"request_id": "log-1", "method": "GET", "path": "/users/a%20b", "route": "GET /users/{id}",
			"subject": "users.a%20b.GET", "status": 200.0, "bytes": 5.0},
		{"request_id": "log-2", "method": "GET", "path": "/nowhere", "route": "", "subject": "nowhere.GET", "status": 404.0},
	}
	for i, want := range tests {
		var got map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &got); err != nil {
			t.Fatalf("entry %q: %v", lines[i], err)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("entry %d: %s = %v, want %v", i, k, got[k], v)
			}
		}
		if _, ok := got["duration_ms"].(float64); !ok {
			t.Errorf("entry %d: no duration_ms: %v", i, got)
		}
		if wantErr := want["status"] != 200.0; wantErr != (got["error"] != nil) {
			t.Errorf("entry %d: error %v", i, got["error"])
		}
	}
}
