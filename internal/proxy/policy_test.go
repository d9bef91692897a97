package proxy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/leaktest"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/policy"
	"github.com/metropolis-dev/metro/internal/proxy"
)

const (
	testIssuer   = "https://login.test/"
	testAudience = "shop"
)

func ecKey(t testing.TB, kid string) policy.SigningKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return policy.SigningKey{Key: k, KID: kid}
}

func edKey(t testing.TB, kid string) policy.SigningKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return policy.SigningKey{Key: k, KID: kid}
}

func jwks(t testing.TB, keys ...policy.SigningKey) []byte {
	t.Helper()
	b, err := policy.JWKS(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// claims are valid claims for the test issuer and audience, changed by fn.
func claims(sub string, fn func(map[string]any)) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": sub,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if fn != nil {
		fn(c)
	}
	return c
}

func mint(t testing.TB, k policy.SigningKey, c map[string]any) string {
	t.Helper()
	s, err := k.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwksServer serves a JWKS that the test can change, counting fetches, on
// 127.0.0.1.
type jwksServer struct {
	mu      sync.Mutex
	doc     []byte
	down    bool
	fetches atomic.Int32
	srv     *httptest.Server
}

func newJWKSServer(t testing.TB, doc []byte) *jwksServer {
	s := &jwksServer{doc: doc}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(s.doc)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jwksServer) set(doc []byte, down bool) {
	s.mu.Lock()
	s.doc, s.down = doc, down
	s.mu.Unlock()
}

func (s *jwksServer) url() string { return s.srv.URL + "/.well-known/jwks.json" }

func newPolicies(t testing.TB, cfg policy.Config) *policy.Set {
	t.Helper()
	s, err := policy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func authMode(m policy.AuthMode) *policy.AuthMode { return &m }

// claimsWorker starts a worker whose routes answer with the claims the
// SDK hands them as JSON ("null" for none), counting calls.
func claimsWorker(e *env, calls *atomic.Int32, patterns ...string) {
	e.t.Helper()
	routes := map[string]http.HandlerFunc{}
	for _, p := range patterns {
		routes[p] = func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			json.NewEncoder(w).Encode(metro.Claims(r))
		}
	}
	e.worker("claims", routes)
}

// TestJWTAuth sends tokens of every kind to a route that requires one,
// with the JWKS served over HTTP and read from a file: only a valid token
// reaches the worker, which sees its claims; every other answer is 401
// with an RFC 6750 challenge, and nothing is published.
func TestJWTAuth(t *testing.T) {
	good := ecKey(t, "k1")
	ed := edKey(t, "k2")
	impostor := ecKey(t, "k1") // same kid, another key
	doc := jwks(t, good, ed)
	srv := newJWKSServer(t, doc)
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(claims("mallory", nil))).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	hmac, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims("mallory", nil))).SignedString(doc)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token string
		status      int
		errAttr     string // the challenge's error attribute
	}{
		{"valid ES256", mint(t, good, claims("alice", nil)), 200, ""},
		{"valid EdDSA", mint(t, ed, claims("bob", nil)), 200, ""},
		{"missing", "", 401, ""},
		{"expired", mint(t, good, claims("alice", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), 401, "invalid_token"},
		{"not yet valid", mint(t, good, claims("alice", func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), 401, "invalid_token"},
		{"no exp", mint(t, good, claims("alice", func(c map[string]any) { delete(c, "exp") })), 401, "invalid_token"},
		{"wrong audience", mint(t, good, claims("alice", func(c map[string]any) { c["aud"] = "billing" })), 401, "invalid_token"},
		{"wrong issuer", mint(t, good, claims("alice", func(c map[string]any) { c["iss"] = "https://evil.test/" })), 401, "invalid_token"},
		{"alg none", none, 401, "invalid_token"},
		{"HS256 keyed with the JWKS", hmac, 401, "invalid_token"},
		{"wrong key", mint(t, impostor, claims("alice", nil)), 401, "invalid_token"},
		{"garbage", "not.a.token", 401, "invalid_token"},
		{"empty bearer", " ", 400, "invalid_request"},
		{"another scheme", "Basic YWxpY2U6c2VjcmV0", 401, ""},
	}
	for _, src := range []struct{ name, jwks string }{{"url", srv.url()}, {"file", file}} {
		t.Run(src.name, func(t *testing.T) {
			var calls atomic.Int32
			e := newEnv(t, proxy.Config{Policies: newPolicies(t, policy.Config{
				JWT: &policy.JWTConfig{JWKS: src.jwks, Issuer: testIssuer, Audience: testAudience},
			})})
			claimsWorker(e, &calls, "GET /me")
			s := e.spy()
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					hdr := map[string]string{}
					switch {
					case strings.HasPrefix(tc.token, "Basic "):
						hdr["Authorization"] = tc.token
					case tc.token != "":
						hdr["Authorization"] = "Bearer " + tc.token
					}
					before := calls.Load()
					resp, body := e.do("GET", "/me", "", hdr)
					if tc.status == 200 {
						if resp.StatusCode != 200 {
							t.Fatalf("status %d: %s", resp.StatusCode, body)
						}
						var got map[string]any
						json.Unmarshal([]byte(body), &got)
						want := claims("", nil)
						jwt.NewParser().ParseUnverified(tc.token, jwt.MapClaims(want))
						if got["sub"] != want["sub"] || got["aud"] != testAudience || got["iss"] != testIssuer {
							t.Errorf("worker saw claims %v, want those of the token %v", got, want)
						}
						return
					}
					checkProblem(t, resp, body, tc.status)
					ch := resp.Header.Get("WWW-Authenticate")
					if !strings.HasPrefix(ch, "Bearer ") {
						t.Errorf("WWW-Authenticate %q, want a Bearer challenge", ch)
					}
					if hasErr := strings.Contains(ch, "error="); hasErr != (tc.errAttr != "") || !strings.Contains(ch, `error="`+tc.errAttr+`"`) && tc.errAttr != "" {
						t.Errorf("WWW-Authenticate %q, want error %q", ch, tc.errAttr)
					}
					if calls.Load() != before {
						t.Error("the worker was called")
					}
					if s.published(resp.Header.Get("X-Request-Id")) {
						t.Error("a refused request was published")
					}
				})
			}
		})
	}
}

// TestClaimsNotForgeable: a Metro-Claims header from the client never
// reaches the worker; only the gateway's own, from a verified token.
func TestClaimsNotForgeable(t *testing.T) {
	k := ecKey(t, "k1")
	srv := newJWKSServer(t, jwks(t, k))
	var calls atomic.Int32
	e := newEnv(t, proxy.Config{Policies: newPolicies(t, policy.Config{
		JWT: &policy.JWTConfig{JWKS: srv.url(), Issuer: testIssuer, Audience: testAudience},
		Routes: map[string]policy.RouteConfig{
			"GET /open":  {Auth: authMode(policy.AuthNone)},
			"GET /maybe": {Auth: authMode(policy.AuthOptional)},
			// A tail pattern covers the routes below it that workers announce.
			"GET /pub/{p...}": {Auth: authMode(policy.AuthNone)},
		},
	})})
	claimsWorker(e, &calls, "GET /open", "GET /maybe", "GET /me", "GET /pub/{id}", "POST /pub/{id}")
	forged := `eyJzdWIiOiJhZG1pbiJ9` // {"sub":"admin"}
	tests := []struct {
		path, token string
		status      int
		sub         any
	}{
		{"/open", "", 200, nil},
		{"/open", mint(t, k, claims("alice", nil)), 200, nil}, // auth none: the token is not even read
		{"/maybe", "", 200, nil},
		{"/maybe", mint(t, k, claims("alice", nil)), 200, "alice"},
		{"/maybe", mint(t, k, claims("alice", func(c map[string]any) { c["aud"] = "x" })), 401, nil},
		{"/me", mint(t, k, claims("alice", nil)), 200, "alice"},
		{"/me", "", 401, nil},
		{"/pub/7", "", 200, nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %v", tc.path, tc.token != ""), func(t *testing.T) {
			hdr := map[string]string{"Metro-Claims": forged}
			if tc.token != "" {
				hdr["Authorization"] = "Bearer " + tc.token
			}
			resp, body := e.do("GET", tc.path, "", hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status != 200 {
				return
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if got["sub"] != tc.sub {
				t.Errorf("worker saw claims %v, want sub %v", got, tc.sub)
			}
		})
	}
}

// TestJWKSRotation: a token with a kid the gateway has not seen makes it
// fetch the JWKS again, at most once per UnknownKIDRefresh; while the
// issuer is down the keys held keep verifying; a JWKS file is read again
// when it changes.
func TestJWKSRotation(t *testing.T) {
	t.Run("url", func(t *testing.T) {
		a, b := ecKey(t, "a"), ecKey(t, "b")
		srv := newJWKSServer(t, jwks(t, a))
		e := newEnv(t, proxy.Config{Policies: newPolicies(t, policy.Config{
			JWT:  &policy.JWTConfig{JWKS: srv.url(), Issuer: testIssuer, Audience: testAudience},
			Keys: policy.KeySetOptions{UnknownKIDRefresh: time.Hour},
		})})
		var calls atomic.Int32
		claimsWorker(e, &calls, "GET /me")
		get := func(k policy.SigningKey) int {
			resp, _ := e.do("GET", "/me", "", map[string]string{"Authorization": "Bearer " + mint(t, k, claims("alice", nil))})
			return resp.StatusCode
		}
		if st := get(a); st != 200 {
			t.Fatalf("token of key a: %d", st)
		}
		fetched := srv.fetches.Load()
		// The issuer rotates: b is new, and a stays published for a while.
		srv.set(jwks(t, a, b), false)
		if st := get(b); st != 200 {
			t.Fatalf("token of rotated-in key b: %d", st)
		}
		if n := srv.fetches.Load(); n != fetched+1 {
			t.Errorf("%d fetches for one unknown kid, want 1", n-fetched)
		}
		// A flood of unknown kids: no more fetches within the interval.
		for i := range 20 {
			if st := get(ecKey(t, fmt.Sprintf("forged-%d", i))); st != 401 {
				t.Fatalf("token of an unknown key: %d", st)
			}
		}
		if n := srv.fetches.Load(); n != fetched+1 {
			t.Errorf("%d fetches after 20 unknown kids, want none beyond the first", n-fetched-1)
		}
		// The issuer goes down: what is cached keeps working.
		srv.set(nil, true)
		if err := e.gw.Policies().Verifier().Keys().Refresh(context.Background()); err == nil {
			t.Fatal("refresh from a down issuer succeeded")
		}
		if st := get(a); st != 200 {
			t.Errorf("key a while the issuer is down: %d", st)
		}
		if st := get(b); st != 200 {
			t.Errorf("key b while the issuer is down: %d", st)
		}
	})
	t.Run("file", func(t *testing.T) {
		a, b := edKey(t, "a"), edKey(t, "b")
		file := filepath.Join(t.TempDir(), "jwks.json")
		if err := os.WriteFile(file, jwks(t, a), 0o600); err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, proxy.Config{Policies: newPolicies(t, policy.Config{
			JWT:  &policy.JWTConfig{JWKS: file, Issuer: testIssuer, Audience: testAudience},
			Keys: policy.KeySetOptions{FileCheck: 20 * time.Millisecond},
		})})
		var calls atomic.Int32
		claimsWorker(e, &calls, "GET /me")
		tokB := "Bearer " + mint(t, b, claims("bob", nil))
		if resp, _ := e.do("GET", "/me", "", map[string]string{"Authorization": tokB}); resp.StatusCode != 401 {
			t.Fatalf("token of key b before it is in the file: %d", resp.StatusCode)
		}
		// Written aside and renamed, as a ConfigMap update lands.
		tmp := file + ".new"
		if err := os.WriteFile(tmp, jwks(t, a, b), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, _ := e.do("GET", "/me", "", map[string]string{"Authorization": tokB})
			if resp.StatusCode == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("token of key b still %d after the file changed", resp.StatusCode)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// TestCORS: a preflight is answered by the gateway with the methods the
// route table knows for the path, without a token and without reaching a
// worker; actual responses carry the origin only when it is allowed.
func TestCORS(t *testing.T) {
	k := ecKey(t, "k1")
	srv := newJWKSServer(t, jwks(t, k))
	var calls atomic.Int32
	e := newEnv(t, proxy.Config{Policies: newPolicies(t, policy.Config{
		JWT: &policy.JWTConfig{JWKS: srv.url(), Issuer: testIssuer, Audience: testAudience},
		CORS: &policy.CORSConfig{
			Origins: []string{"https://app.example.com"}, Headers: []string{"authorization", "Content-Type"},
			Credentials: true, MaxAge: 10 * time.Minute,
		},
		Routes: map[string]policy.RouteConfig{"GET /items": {Auth: authMode(policy.AuthNone)}},
	})})
	claimsWorker(e, &calls, "GET /items", "POST /items", "DELETE /items/{id}")
	s := e.spy()

	preflight := func(origin, method, path string) (*http.Response, string) {
		return e.do("OPTIONS", path, "", map[string]string{
			"Origin": origin, "Access-Control-Request-Method": method,
			"Access-Control-Request-Headers": "authorization,content-type",
		})
	}
	resp, body := preflight("https://app.example.com", "POST", "/items")
	if resp.StatusCode != 204 {
		t.Fatalf("preflight: %d %s", resp.StatusCode, body)
	}
	want := map[string]string{
		"Access-Control-Allow-Origin":      "https://app.example.com",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Methods":     "GET, HEAD, POST",
		"Access-Control-Allow-Headers":     "Authorization, Content-Type",
		"Access-Control-Max-Age":           "600",
	}
	for h, v := range want {
		if got := resp.Header.Get(h); got != v {
			t.Errorf("preflight %s: %q, want %q", h, got, v)
		}
	}
	if !strings.Contains(resp.Header.Get("Vary"), "Origin") {
		t.Errorf("preflight Vary %q", resp.Header.Get("Vary"))
	}
	if s.published(resp.Header.Get("X-Request-Id")) || calls.Load() != 0 {
		t.Error("a preflight reached NATS")
	}
	if resp, _ := preflight("https://app.example.com", "DELETE", "/items/7"); resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Methods") != "DELETE" {
		t.Errorf("preflight of /items/7: %d, methods %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Methods"))
	}
	for _, tc := range []struct{ origin, method string }{
		{"https://evil.example.com", "POST"},
		{"https://app.example.com", "PUT"},
	} {
		resp, body := preflight(tc.origin, tc.method, "/items")
		checkProblem(t, resp, body, 403)
		if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("refused preflight from %s for %s carries Access-Control-Allow-Origin %q", tc.origin, tc.method, v)
		}
	}

	// Actual requests.
	resp, body = e.do("GET", "/items", "", map[string]string{"Origin": "https://app.example.com"})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(resp.Header.Get("Vary"), "Origin") {
		t.Errorf("actual GET from an allowed origin: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, _ = e.do("GET", "/items", "", map[string]string{"Origin": "https://evil.example.com"})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("actual GET from a disallowed origin: %d %v", resp.StatusCode, resp.Header)
	}
	// A refusal a page must be able to read carries CORS headers too.
	resp, body = e.do("POST", "/items", "{}", map[string]string{"Origin": "https://app.example.com"})
	checkProblem(t, resp, body, 401)
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("401 to an allowed origin lacks Access-Control-Allow-Origin: %v", resp.Header)
	}
}

// TestRateLimit: over a limit the answer is 429 with Retry-After and the
// IETF RateLimit headers, nothing is published, the limit recovers, and a
// route's limit applies on top of the global one.
func TestRateLimit(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, proxy.Config{Registerer: reg, Policies: newPolicies(t, policy.Config{
		// Generous enough that a busy machine does not refill a bucket
		// between two requests of one test, small enough to recover soon.
		RateLimit: &policy.LimitConfig{Rate: policy.Rate{N: 1, Per: time.Second}, Burst: 3, Key: policy.Key{Kind: policy.KeyHeader, Name: "X-Client"}},
		Routes: map[string]policy.RouteConfig{
			"POST /orders": {RateLimit: &policy.LimitConfig{Rate: policy.Rate{N: 1, Per: 2 * time.Second}, Burst: 1, Key: policy.Key{Kind: policy.KeyHeader, Name: "X-Client"}}},
		},
	})})
	var calls atomic.Int32
	claimsWorker(e, &calls, "GET /items", "POST /orders")
	s := e.spy()
	as := func(client string) map[string]string { return map[string]string{"X-Client": client} }

	t.Run("global", func(t *testing.T) {
		for i := range 3 {
			resp, body := e.do("GET", "/items", "", as("a"))
			if resp.StatusCode != 200 {
				t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
			}
			if p := resp.Header.Get("RateLimit-Policy"); p != `"global";q=3;w=3` {
				t.Errorf("RateLimit-Policy %q", p)
			}
		}
		before := calls.Load()
		resp, body := e.do("GET", "/items", "", as("a"))
		checkProblem(t, resp, body, 429)
		if ra := resp.Header.Get("Retry-After"); ra != "1" {
			t.Errorf("Retry-After %q, want 1", ra)
		}
		if rl := resp.Header.Get("RateLimit"); !strings.HasPrefix(rl, `"global";r=0;t=`) {
			t.Errorf("RateLimit %q", rl)
		}
		if calls.Load() != before || s.published(resp.Header.Get("X-Request-Id")) {
			t.Error("a limited request reached NATS")
		}
		// Another client has its own bucket.
		if resp, _ := e.do("GET", "/items", "", as("b")); resp.StatusCode != 200 {
			t.Errorf("client b: %d", resp.StatusCode)
		}
		// Recovery: a token comes back within a second.
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, _ := e.do("GET", "/items", "", as("a"))
			if resp.StatusCode == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still %d after the window", resp.StatusCode)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	t.Run("route", func(t *testing.T) {
		resp, body := e.do("POST", "/orders", "{}", as("c"))
		if resp.StatusCode != 200 {
			t.Fatalf("first order: %d %s", resp.StatusCode, body)
		}
		if p := resp.Header.Get("RateLimit-Policy"); p != `"global";q=3;w=3, "route";q=1;w=2` {
			t.Errorf("RateLimit-Policy %q", p)
		}
		resp, body = e.do("POST", "/orders", "{}", as("c"))
		checkProblem(t, resp, body, 429)
		if !strings.Contains(body, "route") {
			t.Errorf("429 does not name the route limit: %s", body)
		}
		// The route limit spends none of another route's: GET still has
		// the global bucket's last token.
		if resp, body := e.do("GET", "/items", "", as("c")); resp.StatusCode != 200 {
			t.Errorf("GET after the route limit: %d %s", resp.StatusCode, body)
		}
		// And the global limit covers every route: c has spent 3 now.
		resp, body = e.do("POST", "/orders", "{}", as("c"))
		checkProblem(t, resp, body, 429)
		if !strings.Contains(body, "global") {
			t.Errorf("429 does not name the global limit: %s", body)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		got := map[string]float64{}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "metro_gateway_policy_denied_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				l := map[string]string{}
				for _, lp := range m.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				got[l["route"]+" "+l["code"]] += m.GetCounter().GetValue()
			}
		}
		if got["GET /items 429"] < 1 || got["POST /orders 429"] != 2 {
			t.Errorf("policy_denied_total %v", got)
		}
	})
}

// TestPolicyPatternMethod: a pattern's policies apply to its method only;
// POST under a GET-only "none" pattern still needs a token.
func TestPolicyPatternMethod(t *testing.T) {
	k := ecKey(t, "k1")
	srv := newJWKSServer(t, jwks(t, k))
	e := newEnv(t, proxy.Config{Policies: newPolicies(t, policy.Config{
		JWT: &policy.JWTConfig{JWKS: srv.url(), Issuer: testIssuer, Audience: testAudience},
		Routes: map[string]policy.RouteConfig{
			"GET /pub/{p...}": {Auth: authMode(policy.AuthNone)},
			"GET /exact":      {Auth: authMode(policy.AuthNone)},
		},
	})})
	var calls atomic.Int32
	claimsWorker(e, &calls, "GET /pub/{id}", "POST /pub/{id}", "GET /exact")
	if resp, body := e.do("HEAD", "/exact", "", nil); resp.StatusCode != 200 {
		t.Errorf("HEAD /exact: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do("GET", "/pub/1", "", nil); resp.StatusCode != 200 {
		t.Errorf("GET /pub/1: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do("HEAD", "/pub/1", "", nil); resp.StatusCode != 200 {
		t.Errorf("HEAD /pub/1: %d %s", resp.StatusCode, body)
	}
	resp, body := e.do("POST", "/pub/1", "", nil)
	checkProblem(t, resp, body, 401)
}

// TestPoliciesFromErrors: a JWKS file that cannot serve is reported at
// the file, line and key that name it.
func TestPoliciesFromErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "empty.json"), []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret.json"), []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ file, want string }{
		{"nope.json", "metro.yaml:4: gateway.auth.jwt.jwks: reading JWKS file:"},
		{"empty.json", "metro.yaml:4: gateway.auth.jwt.jwks: JWKS file " + filepath.Join(dir, "empty.json") + ": holds no public signing key"},
		{"secret.json", "holds no public signing key"},
	}
	for _, tc := range tests {
		c, err := config.Parse("metro.yaml", dir, []byte("gateway:\n  auth:\n    jwt:\n      jwks: "+tc.file+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = proxy.PoliciesFrom(c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.file, err, tc.want)
		}
	}
}

// TestPoliciesLeaveNoGoroutines: the key refreshing of a policy set stops
// when the gateway replaces the set and when its Run ends, with no
// connection to the JWKS server left open.
func TestPoliciesLeaveNoGoroutines(t *testing.T) {
	ns := natstest.Run(t)
	nc := natstest.Connect(t, ns)
	k := ecKey(t, "k1")
	srv := newJWKSServer(t, jwks(t, k))
	base := runtime.NumGoroutine()

	cfg := policy.Config{JWT: &policy.JWTConfig{JWKS: srv.url(), Issuer: testIssuer, Audience: testAudience}}
	gw, err := proxy.New(nc, proxy.Config{Logger: quiet, DiscoveryInterval: 50 * time.Millisecond, Policies: newPolicies(t, cfg)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	fetchedBy := func(n int32) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); srv.fetches.Load() < n; {
			if time.Now().After(deadline) {
				t.Fatalf("%d JWKS fetches, want %d", srv.fetches.Load(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	fetchedBy(1)
	if err := gw.SetPolicies(newPolicies(t, cfg)); err != nil {
		t.Fatal(err)
	}
	fetchedBy(2)
	if gw.Policies().Verifier().Keys().Len() != 1 {
		t.Error("the new set has no keys")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	leaktest.Settle(t, base)
}

// TestRateLimitByAddress: the ip key counts the client behind trusted
// proxies, the rightmost address in X-Forwarded-For that is not one, so a
// client cannot escape its bucket by prepending addresses.
func TestRateLimitByAddress(t *testing.T) {
	e := newEnv(t, proxy.Config{
		Policies: newPolicies(t, policy.Config{
			RateLimit: &policy.LimitConfig{Rate: policy.Rate{N: 1, Per: time.Hour}, Burst: 1, Key: policy.Key{Kind: policy.KeyIP}},
		}),
		// The test client on loopback, and an inner proxy on 10/8.
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")},
	})
	var calls atomic.Int32
	claimsWorker(e, &calls, "GET /items")
	via := func(xff string) int {
		resp, _ := e.do("GET", "/items", "", map[string]string{"X-Forwarded-For": xff})
		return resp.StatusCode
	}
	if st := via("203.0.113.1"); st != 200 {
		t.Fatalf("first request of 203.0.113.1: %d", st)
	}
	if st := via("198.51.100.9, 203.0.113.1"); st != 429 {
		t.Errorf("203.0.113.1 behind a forged hop: %d, want 429", st)
	}
	if st := via("203.0.113.1, 10.0.0.7"); st != 429 {
		t.Errorf("203.0.113.1 behind a trusted hop: %d, want 429", st)
	}
	if st := via("203.0.113.2"); st != 200 {
		t.Errorf("another client: %d", st)
	}
}
