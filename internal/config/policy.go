package config

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/metropolis-dev/metro/internal/policy"
)

// Auth is gateway.auth.
type Auth struct {
	JWT *JWT `yaml:"jwt"`
}

// JWT is gateway.auth.jwt: bearer tokens signed by a key of the JWKS.
type JWT struct {
	JWKS     string `yaml:"jwks"` // URL, or file path relative to metro.yaml
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
}

// CORS is gateway.cors.
type CORS struct {
	Origins     []string `yaml:"origins"`
	Headers     []string `yaml:"headers"`
	Credentials bool     `yaml:"credentials"`
	MaxAge      Duration `yaml:"max_age"`
}

// RateLimit is gateway.rate_limit, or a route's rate_limit.
type RateLimit struct {
	Rate  string `yaml:"rate"`  // "100/s"
	Burst int    `yaml:"burst"` // 0: the rate's count
	Key   string `yaml:"key"`   // ip | header:NAME | claim:NAME
}

// HasJWT reports whether gateway.auth.jwt is set.
func (g *Gateway) HasJWT() bool { return g.Auth != nil && g.Auth.JWT != nil }

// validatePolicies checks the gateway's auth, cors and rate_limit keys and
// those of its routes.
func (c *Config) validatePolicies() []error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, c.Errorf(key, format, args...))
	}
	g := &c.Gateway
	if g.HasJWT() {
		if err := policy.CheckJWKSSource(g.Auth.JWT.JWKS); err != nil {
			add("gateway.auth.jwt.jwks", "%v", err)
		}
	}
	if cors := g.CORS; cors != nil {
		if len(cors.Origins) == 0 {
			add("gateway.cors.origins", "is required: the origins whose pages may call the API, or [\"*\"]")
		}
		for i, o := range cors.Origins {
			key := fmt.Sprintf("gateway.cors.origins[%d]", i)
			if err := policy.CheckOrigin(o); err != nil {
				add(key, "%v", err)
			} else if o == "*" && cors.Credentials {
				add(key, "%v", policy.ErrWildcardCredentials)
			}
		}
		for i, h := range cors.Headers {
			if !isToken(h) {
				add(fmt.Sprintf("gateway.cors.headers[%d]", i), "%q is not a header name", h)
			}
		}
		if cors.MaxAge < 0 {
			add("gateway.cors.max_age", "must not be negative")
		}
	}
	if g.RateLimit != nil {
		errs = append(errs, c.checkRateLimit("gateway.rate_limit", g.RateLimit)...)
	}
	for i, r := range g.Routes {
		key := fmt.Sprintf("gateway.routes[%d]", i)
		if r.Auth != "" {
			mode, err := policy.ParseAuthMode(r.Auth)
			switch {
			case err != nil:
				add(key+".auth", "%v", err)
			case mode != policy.AuthNone && !g.HasJWT():
				add(key+".auth", "%s needs gateway.auth.jwt (the keys tokens are checked against)", r.Auth)
			}
		}
		if r.RateLimit != nil {
			errs = append(errs, c.checkRateLimit(key+".rate_limit", r.RateLimit)...)
		}
	}
	return errs
}

func (c *Config) checkRateLimit(key string, rl *RateLimit) []error {
	var errs []error
	if rl.Rate == "" {
		errs = append(errs, c.Errorf(key+".rate", "is required (e.g. 100/s)"))
	} else if _, err := policy.ParseRate(rl.Rate); err != nil {
		errs = append(errs, c.Errorf(key+".rate", "%v", err))
	}
	if rl.Burst < 0 {
		errs = append(errs, c.Errorf(key+".burst", "%d is negative (leave it out for the rate's count)", rl.Burst))
	}
	k, err := policy.ParseKey(rl.Key)
	switch {
	case err != nil:
		errs = append(errs, c.Errorf(key+".key", "%v", err))
	case k.Kind == policy.KeyClaim && !c.Gateway.HasJWT():
		errs = append(errs, c.Errorf(key+".key", "%s needs gateway.auth.jwt (claims come from a verified token)", rl.Key))
	}
	return errs
}

// LimitConfig converts rl, already validated, for the policy package.
func (rl *RateLimit) LimitConfig() (policy.LimitConfig, error) {
	r, err := policy.ParseRate(rl.Rate)
	if err != nil {
		return policy.LimitConfig{}, err
	}
	k, err := policy.ParseKey(rl.Key)
	if err != nil {
		return policy.LimitConfig{}, err
	}
	if rl.Burst < 0 {
		return policy.LimitConfig{}, errors.New("burst is negative")
	}
	return policy.LimitConfig{Rate: r, Burst: rl.Burst, Key: k}, nil
}

// isToken reports whether s is an HTTP token (RFC 9110 5.6.2), as header
// names are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c > 0x7e || c <= 0x20 || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", c) {
			return false
		}
	}
	return http.CanonicalHeaderKey(s) != ""
}

// setPolicy assigns one policy key from an environment variable or flag
// (see Env); it creates the blocks it needs, as the file would.
func (c *Config) setPolicy(key, v string) error {
	g := &c.Gateway
	jwt := func() *JWT {
		if g.Auth == nil {
			g.Auth = &Auth{}
		}
		if g.Auth.JWT == nil {
			g.Auth.JWT = &JWT{}
		}
		return g.Auth.JWT
	}
	switch key {
	case "gateway.auth.jwt.jwks":
		if err := policy.CheckJWKSSource(v); err != nil {
			return err
		}
		jwt().JWKS = v
	case "gateway.auth.jwt.issuer":
		jwt().Issuer = v
	case "gateway.auth.jwt.audience":
		jwt().Audience = v
	case "gateway.cors.origins":
		var origins []string
		for o := range strings.SplitSeq(v, ",") {
			o = strings.TrimSpace(o)
			if err := policy.CheckOrigin(o); err != nil {
				return err
			}
			origins = append(origins, o)
		}
		if g.CORS == nil {
			g.CORS = &CORS{}
		}
		g.CORS.Origins = origins
	case "gateway.rate_limit.rate":
		if _, err := policy.ParseRate(v); err != nil {
			return err
		}
		if g.RateLimit == nil {
			g.RateLimit = &RateLimit{}
		}
		g.RateLimit.Rate = v
	default:
		return fmt.Errorf("%s cannot be set from the environment or a flag", key)
	}
	return nil
}

// SetPolicy is setPolicy for flags: it also records source (the flag) as
// where key was set, so a problem with the value names it.
func (c *Config) SetPolicy(key, v, source string) error {
	if err := c.setPolicy(key, v); err != nil {
		return &Error{File: c.Path, Key: key, Source: source, Msg: err.Error()}
	}
	c.SetBy(key, source)
	return nil
}
