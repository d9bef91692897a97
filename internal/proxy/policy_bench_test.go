package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/metropolis-dev/metro/internal/policy"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// BenchmarkGatewayJWT is BenchmarkGateway's routed request with a bearer
// token verified on each request (ES256 and EdDSA, the JWKS cached), and
// a rate limit per token subject on top: the cost of the edge policies is
// the difference to BenchmarkGateway/routed.
func BenchmarkGatewayJWT(b *testing.B) {
	es, ed := ecKey(b, "es"), edKey(b, "ed")
	srv := newJWKSServer(b, jwks(b, es, ed))
	e := newEnv(b, proxy.Config{Policies: newPolicies(b, policy.Config{
		JWT:       &policy.JWTConfig{JWKS: srv.url(), Issuer: testIssuer, Audience: testAudience},
		RateLimit: &policy.LimitConfig{Rate: policy.Rate{N: 1 << 30, Per: 1e9}, Key: policy.Key{Kind: policy.KeyClaim, Name: "sub"}},
	})})
	e.worker("bench", map[string]http.HandlerFunc{
		"GET /hello/{name}": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "hello "+r.PathValue("name"))
		},
	})
	for _, k := range []policy.SigningKey{es, ed} {
		tok := "Bearer " + mint(b, k, claims("alice", nil))
		b.Run(k.KID, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest("GET", "/hello/world?x=1", nil)
				req.RemoteAddr = "10.1.2.3:4567"
				req.Header.Set("Authorization", tok)
				for pb.Next() {
					rec := httptest.NewRecorder()
					e.gw.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Errorf("status %d: %s", rec.Code, rec.Body)
						return
					}
				}
			})
		})
	}
}
