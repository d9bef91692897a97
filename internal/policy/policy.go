// Package policy is what the gateway asks of a request before it costs a
// NATS message: a verified bearer token (auth.go, keys from a JWKS in
// jwks.go), the CORS protocol for browsers (cors.go) and token-bucket rate
// limits (ratelimit.go). A Set composes them for one configuration; the
// gateway calls Admit once per request, after matching its route.
package policy

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"
)

// Config is the policies of one gateway. Zero values mean "none".
type Config struct {
	JWT       *JWTConfig
	CORS      *CORSConfig
	RateLimit *LimitConfig
	// Routes holds per-route settings by ServeMux pattern ("POST
	// /orders"); a request takes those of the most specific pattern that
	// matches it (the gateway does the matching, see Patterns).
	Routes map[string]RouteConfig
	// Dir is where a relative JWKS file path is resolved.
	Dir    string
	Keys   KeySetOptions
	Logger *slog.Logger
}

// RouteConfig is one route's policies.
type RouteConfig struct {
	Auth      *AuthMode // nil: required once JWT is configured
	RateLimit *LimitConfig
}

// Set is a configuration's policies, ready to admit requests.
type Set struct {
	verifier *Verifier
	cors     *CORS
	global   *Limiter
	routes   map[string]routePolicy
	now      func() time.Time
}

type routePolicy struct {
	auth  AuthMode
	limit *Limiter
}

// New builds the policies of cfg. A JWKS file is read now.
func New(cfg Config) (*Set, error) {
	s := &Set{routes: map[string]routePolicy{}, now: time.Now}
	if cfg.JWT != nil {
		opts := cfg.Keys
		if opts.Logger == nil {
			opts.Logger = cfg.Logger
		}
		ks, err := NewKeySet(cfg.JWT.JWKS, cfg.Dir, opts)
		if err != nil {
			return nil, fmt.Errorf("gateway.auth.jwt.jwks: %w", err)
		}
		s.verifier = NewVerifier(*cfg.JWT, ks)
	}
	if cfg.CORS != nil {
		c, err := NewCORS(*cfg.CORS)
		if err != nil {
			return nil, fmt.Errorf("gateway.cors: %w", err)
		}
		s.cors = c
	}
	if cfg.RateLimit != nil {
		s.global = NewLimiter("global", *cfg.RateLimit)
	}
	for pattern, rc := range cfg.Routes {
		rp := routePolicy{auth: AuthRequired}
		if rc.Auth != nil {
			rp.auth = *rc.Auth
		}
		if rp.auth != AuthNone && s.verifier == nil && rc.Auth != nil {
			return nil, fmt.Errorf("route %s: auth %s needs gateway.auth.jwt", pattern, authName(rp.auth))
		}
		if rc.RateLimit != nil {
			rp.limit = NewLimiter("route", *rc.RateLimit)
		}
		s.routes[pattern] = rp
	}
	return s, nil
}

// Patterns lists the patterns that have settings of their own.
func (s *Set) Patterns() []string {
	out := make([]string, 0, len(s.routes))
	for p := range s.routes {
		out = append(out, p)
	}
	return out
}

func authName(m AuthMode) string {
	return [...]string{"required", "optional", "none"}[m]
}

// Run keeps the JWKS fresh until ctx ends.
func (s *Set) Run(ctx context.Context) {
	if s.verifier != nil {
		s.verifier.keys.Run(ctx)
	}
}

// Verifier is the token verifier, nil without gateway.auth.jwt.
func (s *Set) Verifier() *Verifier { return s.verifier }

// Limiters are the global limiter and the per-route ones, for tests and
// metrics; nil entries are left out.
func (s *Set) Limiters() []*Limiter {
	var out []*Limiter
	if s.global != nil {
		out = append(out, s.global)
	}
	for _, rp := range s.routes {
		if rp.limit != nil {
			out = append(out, rp.limit)
		}
	}
	return out
}

// Request is what Admit needs to know of a request beyond itself.
type Request struct {
	// Matched says the route table has a route for the request; without
	// one only CORS applies (the answer is 404 or 405 anyway).
	Matched bool
	// Pattern is the most specific pattern of Config.Routes matching the
	// request, "" for none (the defaults apply).
	Pattern string
	// Methods lists the methods the path's routes accept, for a
	// preflight; called only for one.
	Methods func() []string
	// ClientIP is the client's address (after trusted proxies).
	ClientIP func() string
}

// Verdict is Admit's answer. With Status 0 the request goes on, carrying
// Claims when a token was verified. Otherwise it is refused with Status
// (400, 401, 403 or 429) and Detail, headers such as WWW-Authenticate already
// set; Written means Admit has answered already (a preflight).
type Verdict struct {
	Status     int
	Detail     string
	RetryAfter int
	Written    bool
	Claims     *Claims
}

// Admit applies the policies to r, in the order a client would want
// them explained: CORS first (a browser cannot read any answer without
// it), then the token, then the rate limits (which may count by claim).
func (s *Set) Admit(w http.ResponseWriter, r *http.Request, req Request) Verdict {
	h := w.Header()
	if s.cors != nil {
		if IsPreflight(r) && req.Methods != nil {
			if methods := req.Methods(); len(methods) > 0 {
				status, detail := s.cors.Preflight(w, r, methods)
				return Verdict{Status: status, Detail: detail, Written: status == http.StatusNoContent}
			}
		}
		s.cors.Actual(h, r)
	}
	if !req.Matched {
		return Verdict{}
	}
	rp, ok := s.routes[req.Pattern]
	if !ok {
		rp = routePolicy{auth: AuthRequired}
	}
	var v Verdict
	if s.verifier != nil && rp.auth != AuthNone {
		tok, present, malformed := BearerToken(r.Header)
		if malformed {
			// RFC 6750 3.1: a malformed request is 400, not 401.
			const d = "the request must carry one Authorization: Bearer header with a token"
			h["Www-Authenticate"] = []string{challenge("invalid_request", d)}
			return Verdict{Status: http.StatusBadRequest, Detail: d}
		}
		switch {
		case present:
			c, err := s.verifier.Verify(r.Context(), tok)
			if err != nil {
				d := describe(err)
				h["Www-Authenticate"] = []string{challenge("invalid_token", d)}
				return Verdict{Status: http.StatusUnauthorized, Detail: d}
			}
			v.Claims = c
		case rp.auth == AuthRequired:
			h["Www-Authenticate"] = []string{challenge("", "")}
			return Verdict{Status: http.StatusUnauthorized, Detail: "this route requires a bearer token"}
		}
	}
	if s.global == nil && rp.limit == nil {
		return v
	}
	now := s.now()
	var policies, states []string
	for _, l := range [...]*Limiter{s.global, rp.limit} {
		if l == nil {
			continue
		}
		policies = append(policies, l.policyItem())
		if v.Status != 0 {
			// Refused already: the request must not spend this
			// limit's tokens too.
			continue
		}
		d := l.Allow(l.keyOf(r, req, v.Claims), now)
		states = append(states, l.stateItem(d))
		if !d.OK {
			v.Status = http.StatusTooManyRequests
			v.RetryAfter = max(int(math.Ceil(d.RetryAfter.Seconds())), 1)
			v.Detail = fmt.Sprintf("rate limit %s exceeded; retry in %ds", l.name, v.RetryAfter)
		}
	}
	h["Ratelimit-Policy"] = []string{strings.Join(policies, ", ")}
	h["Ratelimit"] = []string{strings.Join(states, ", ")}
	return v
}

// keyOf is the bucket key of r. A request without the header or claim
// named is counted by its address, so clients that leave it out do not
// share (and exhaust) one bucket.
func (l *Limiter) keyOf(r *http.Request, req Request, c *Claims) string {
	switch l.key.Kind {
	case KeyHeader:
		if v := r.Header.Get(l.key.Name); v != "" {
			return "h:" + v
		}
	case KeyClaim:
		if c != nil {
			if v, ok := c.Map[l.key.Name]; ok {
				return "c:" + fmt.Sprint(v)
			}
		}
	}
	return "ip:" + req.ClientIP()
}
