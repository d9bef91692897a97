package devserver

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/metropolis-dev/metro/internal/tracing"
)

// TestTracesEnv: METRO_DEV_TRACES sizes the trace buffer, and a value out
// of range stops metro dev with a message naming the variable.
func TestTracesEnv(t *testing.T) {
	for _, v := range []string{"0", "-3", "many", "100001"} {
		getenv := func(k string) string {
			if k == TracesEnv {
				return v
			}
			return ""
		}
		tr, err := startTracing(t.Context(), getenv, t.Logf)
		if err == nil {
			tr.close()
			t.Errorf("%s=%q: started, want an error", TracesEnv, v)
			continue
		}
		if !strings.Contains(err.Error(), TracesEnv) {
			t.Errorf("%s=%q: error %q does not name the variable", TracesEnv, v, err)
		}
	}
	getenv := func(k string) string {
		if k == TracesEnv {
			return "2"
		}
		return ""
	}
	tr, err := startTracing(t.Context(), getenv, t.Logf)
	if err != nil {
		t.Fatalf("%s=2: %v", TracesEnv, err)
	}
	defer tr.close()
	// The collector says how many traces it keeps when one is not there.
	resp, err := http.Get(tr.col.URL() + tracing.LookupPath + "nothing")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "among the last 2") {
		t.Errorf("lookup with %s=2: %d %s", TracesEnv, resp.StatusCode, body)
	}
}
