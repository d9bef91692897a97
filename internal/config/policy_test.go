package config

import (
	"strings"
	"testing"
	"time"
)

// issueExample is the gateway block of the edge policies as documented.
const issueExample = `name: shop
gateway:
  auth:
    jwt:
      jwks: https://login.example.com/.well-known/jwks.json   # URL, or a file path
      issuer: https://login.example.com/
      audience: shop
  cors:
    origins: ["https://app.example.com"]     # "*" allowed only without credentials
    headers: [Authorization, Content-Type]   # request headers allowed
    credentials: true
    max_age: 10m
  rate_limit: {rate: 100/s, burst: 200, key: ip}   # key: ip | header:NAME | claim:NAME
  routes:
    - match: "GET /products/{p...}"
      auth: none                  # required (the default once auth is set) | optional | none
    - match: "POST /orders"
      rate_limit: {rate: 5/s, burst: 5, key: claim:sub}
`

func TestParsePolicies(t *testing.T) {
	c, err := Parse("metro.yaml", t.TempDir(), []byte(issueExample))
	if err != nil {
		t.Fatal(err)
	}
	g := c.Gateway
	if !g.HasJWT() || g.Auth.JWT.Audience != "shop" || g.Auth.JWT.Issuer != "https://login.example.com/" {
		t.Errorf("auth %+v", g.Auth)
	}
	if g.CORS == nil || !g.CORS.Credentials || g.CORS.MaxAge.Std() != 10*time.Minute || len(g.CORS.Headers) != 2 {
		t.Errorf("cors %+v", g.CORS)
	}
	if g.RateLimit == nil || *g.RateLimit != (RateLimit{Rate: "100/s", Burst: 200, Key: "ip"}) {
		t.Errorf("rate_limit %+v", g.RateLimit)
	}
	if g.Routes[0].Auth != "none" || g.Routes[1].RateLimit == nil || g.Routes[1].RateLimit.Key != "claim:sub" {
		t.Errorf("routes %+v", g.Routes)
	}
}

// TestPolicyErrors: each mistake is reported at its file, line and key.
func TestPolicyErrors(t *testing.T) {
	dir := t.TempDir()
	jwt := "gateway:\n  auth:\n    jwt:\n      jwks: https://login.example.com/jwks.json\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"bad JWKS URL", "gateway:\n  auth:\n    jwt:\n      jwks: https:///jwks.json\n",
			`metro.yaml:4: gateway.auth.jwt.jwks: "https:///jwks.json" has no host`},
		{"JWKS of another scheme", "gateway:\n  auth:\n    jwt:\n      jwks: ftp://x/jwks.json\n",
			`metro.yaml:4: gateway.auth.jwt.jwks: "ftp://x/jwks.json": a JWKS URL must be http:// or https://`},
		{"JWKS missing", "gateway:\n  auth:\n    jwt:\n      issuer: x\n",
			`metro.yaml:3: gateway.auth.jwt.jwks: is required`},
		{"unknown key kind", "gateway:\n  rate_limit: {rate: 10/s, key: user:sub}\n",
			`metro.yaml:2: gateway.rate_limit.key: "user:sub" is not a rate limit key (ip, header:NAME or claim:NAME)`},
		{"claim key without auth", "gateway:\n  rate_limit:\n    rate: 10/s\n    key: claim:sub\n",
			`metro.yaml:4: gateway.rate_limit.key: claim:sub needs gateway.auth.jwt`},
		{"bad rate", "gateway:\n  rate_limit:\n    rate: lots\n",
			`metro.yaml:3: gateway.rate_limit.rate: "lots" is not a rate`},
		{"no rate", "gateway:\n  rate_limit:\n    burst: 3\n",
			`metro.yaml:2: gateway.rate_limit.rate: is required`},
		{"negative burst", "gateway:\n  rate_limit:\n    rate: 1/s\n    burst: -1\n",
			`metro.yaml:4: gateway.rate_limit.burst: -1 is negative`},
		{"wildcard with credentials", "gateway:\n  cors:\n    origins:\n      - https://a.example.com\n      - \"*\"\n    credentials: true\n",
			`metro.yaml:5: gateway.cors.origins[1]: "*" cannot be used with credentials: true`},
		{"origin with a path", "gateway:\n  cors:\n    origins: [https://a.example.com/app]\n",
			`metro.yaml:3: gateway.cors.origins[0]: "https://a.example.com/app" is not an origin`},
		{"bad header", "gateway:\n  cors:\n    origins: [\"*\"]\n    headers: [\"Content Type\"]\n",
			`metro.yaml:4: gateway.cors.headers[0]: "Content Type" is not a header name`},
		{"unknown cors key", "gateway:\n  cors:\n    origin: [\"*\"]\n",
			`metro.yaml:3: gateway.cors.origin: unknown key`},
		{"route auth mode", jwt + "  routes:\n    - match: GET /x\n      auth: maybe\n",
			`metro.yaml:7: gateway.routes[0].auth: "maybe" is not an auth mode (required, optional or none)`},
		{"route auth without jwt", "gateway:\n  routes:\n    - match: GET /x\n      auth: required\n",
			`metro.yaml:4: gateway.routes[0].auth: required needs gateway.auth.jwt`},
		{"route rate key", "gateway:\n  routes:\n    - match: GET /x\n      rate_limit: {rate: 1/s, key: \"header:\"}\n",
			`metro.yaml:4: gateway.routes[0].rate_limit.key: "header:" is not a rate limit key`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("metro.yaml", dir, []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n  %v\nwant it to contain\n  %s", err, tc.want)
			}
		})
	}
}

// TestPolicyEnv: the policy variables set their keys, creating the blocks
// they belong to, and a bad value is reported under the variable.
func TestPolicyEnv(t *testing.T) {
	c, err := Parse("metro.yaml", t.TempDir(), []byte("name: p\n"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"METRO_JWKS": "https://login.example.com/jwks.json", "METRO_JWT_ISSUER": "https://login.example.com/",
		"METRO_JWT_AUDIENCE": "shop", "METRO_CORS_ORIGINS": "https://a.example.com, https://b.example.com",
		"METRO_RATE_LIMIT": "50/s",
	}
	if err := c.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	g := c.Gateway
	if *g.Auth.JWT != (JWT{JWKS: env["METRO_JWKS"], Issuer: env["METRO_JWT_ISSUER"], Audience: "shop"}) ||
		len(g.CORS.Origins) != 2 || g.CORS.Origins[1] != "https://b.example.com" || g.RateLimit.Rate != "50/s" {
		t.Errorf("gateway %+v %+v %+v %+v", g.Auth.JWT, g.CORS, g.RateLimit, g)
	}
	bad := map[string]string{"METRO_RATE_LIMIT": "fast"}
	err = c.ApplyEnv(func(k string) string { return bad[k] })
	if err == nil || !strings.HasPrefix(err.Error(), `METRO_RATE_LIMIT: "fast" is not a rate`) {
		t.Errorf("bad METRO_RATE_LIMIT: %v", err)
	}
}
