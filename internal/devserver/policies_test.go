package devserver

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// TestApplyConfigPolicies: a changed gateway policy in metro.yaml takes
// effect on the running gateway, with requests answered all along; a
// broken one is reported and the running policies stay; a change beyond
// the policies asks for a restart.
func TestApplyConfigPolicies(t *testing.T) {
	dir := writeProject(t, map[string]string{"workers/w/main.go": "package main\n"})
	write := func(gateway string) {
		t.Helper()
		y := "name: p\ngateway:\n  listen: 127.0.0.1:0\n" + gateway + "workers:\n  w: {path: ./workers/w}\n"
		if err := os.WriteFile(filepath.Join(dir, "metro.yaml"), []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	o := Options{Dir: dir, Getenv: func(string) string { return "" }}
	cfg, err := loadConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	ns := natstest.Run(t)
	gcfg, err := proxy.ConfigFrom(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gw, srv := metrotest.StartGateway(t, natstest.Connect(t, ns), gcfg)
	metrotest.StartWorker(t, ns.ClientURL(), "w", metrotest.Routes(map[string]http.HandlerFunc{
		"GET /hello": func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("hi")) },
	}))
	metrotest.WaitRoutes(t, gw, "GET /hello")
	var out metrotest.LockedBuffer
	d := &session{cfg: cfg, con: newConsole(&out, false, []string{"dev"}), reload: func() (*config.Config, error) { return loadConfig(o) }, setPolicies: gw.SetPolicies}

	get := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/hello", nil)
		req.Header.Set("X-Client", "a")
		resp, _ := metrotest.Do(t, req)
		return resp
	}
	if resp := get(); resp.StatusCode != 200 || resp.Header.Get("RateLimit") != "" {
		t.Fatalf("before: %d %v", resp.StatusCode, resp.Header)
	}
	write("  rate_limit: {rate: 1/h, burst: 1, key: header:X-Client}\n")
	d.applyConfig()
	if !strings.Contains(out.String(), "applied the gateway's auth, cors and rate_limit from metro.yaml") {
		t.Errorf("output:\n%s", out.String())
	}
	if resp := get(); resp.StatusCode != 200 || resp.Header.Get("RateLimit-Policy") != `"global";q=1;w=3600` {
		t.Errorf("first request after the change: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := get(); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("second request after the change: %d, want 429", resp.StatusCode)
	}

	// A broken policy: reported, the running one stays.
	write("  rate_limit: {rate: 1/h, key: cookie:x}\n")
	d.applyConfig()
	if !strings.Contains(out.String(), `gateway.rate_limit.key: "cookie:x" is not a rate limit key`) || !strings.Contains(out.String(), "metro.yaml not applied") {
		t.Errorf("output:\n%s", out.String())
	}
	if resp := get(); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("after a broken change: %d, want the old limit's 429", resp.StatusCode)
	}

	// Back to none, and a change that needs a restart.
	write("  timeout: 3s\n")
	d.applyConfig()
	if resp := get(); resp.StatusCode != 200 || resp.Header.Get("RateLimit") != "" {
		t.Errorf("after removing the limit: %d %v", resp.StatusCode, resp.Header)
	}
	if !strings.Contains(out.String(), "metro.yaml changed; restart metro dev") {
		t.Errorf("output:\n%s", out.String())
	}
}
