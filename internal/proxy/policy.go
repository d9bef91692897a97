package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/policy"
	"github.com/metropolis-dev/metro/internal/wire"
)

// PoliciesFrom builds the edge policies of metro.yaml's gateway block:
// nil when it sets none, so a gateway without policies pays nothing.
func PoliciesFrom(c *config.Config) (*policy.Set, error) {
	g := &c.Gateway
	pc := policy.Config{Dir: c.Dir, Routes: map[string]policy.RouteConfig{}}
	any := false
	if g.HasJWT() {
		j := g.Auth.JWT
		// Read now, so that a bad file is reported at its key; metro.yaml
		// loads without it, for metro token --new-key to write it.
		if err := policy.CheckJWKSFile(j.JWKS, c.Dir); err != nil {
			return nil, c.Errorf("gateway.auth.jwt.jwks", "%v", err)
		}
		pc.JWT = &policy.JWTConfig{JWKS: j.JWKS, Issuer: j.Issuer, Audience: j.Audience}
		any = true
	}
	if cors := g.CORS; cors != nil {
		pc.CORS = &policy.CORSConfig{Origins: cors.Origins, Headers: cors.Headers, Credentials: cors.Credentials, MaxAge: cors.MaxAge.Std()}
		any = true
	}
	if g.RateLimit != nil {
		lc, err := g.RateLimit.LimitConfig()
		if err != nil {
			return nil, c.Errorf("gateway.rate_limit", "%v", err)
		}
		pc.RateLimit = &lc
		any = true
	}
	for i, r := range g.Routes {
		if r.Auth == "" && r.RateLimit == nil {
			continue
		}
		key := fmt.Sprintf("gateway.routes[%d]", i)
		dr, err := routeOf(r.Match, g.Prefix)
		if err != nil {
			return nil, c.Errorf(key+".match", "%v", err)
		}
		if _, dup := pc.Routes[dr.Pattern]; dup {
			return nil, c.Errorf(key+".match", "%s has policies in an earlier entry already", r.Match)
		}
		var rc policy.RouteConfig
		if r.Auth != "" {
			mode, err := policy.ParseAuthMode(r.Auth)
			if err != nil {
				return nil, c.Errorf(key+".auth", "%v", err)
			}
			rc.Auth = &mode
		}
		if r.RateLimit != nil {
			lc, err := r.RateLimit.LimitConfig()
			if err != nil {
				return nil, c.Errorf(key+".rate_limit", "%v", err)
			}
			rc.RateLimit = &lc
		}
		pc.Routes[dr.Pattern] = rc
		any = true
	}
	if !any {
		return nil, nil
	}
	s, err := policy.New(pc)
	if err != nil {
		return nil, c.Errorf("gateway", "%v", err)
	}
	return s, nil
}

// policies holds the gateway's current policy set, which metro dev may
// replace while requests run.
type policies struct {
	cur     atomic.Pointer[policyState]
	changed chan struct{}
	denied  *prometheus.CounterVec
}

// policyState is a policy set with its patterns as a route list, so the
// most specific pattern for a request is found as the table finds routes.
type policyState struct {
	set      *policy.Set
	patterns routes // key: the pattern
}

func newPolicyState(s *policy.Set, prefix string) (*policyState, error) {
	if s == nil {
		return nil, nil
	}
	st := &policyState{set: s}
	for _, p := range s.Patterns() {
		r, err := routeOf(p, prefix)
		if err != nil {
			return nil, fmt.Errorf("policy route %q: %w", p, err)
		}
		toks := strings.Split(r.Subject, ".")
		st.patterns = append(st.patterns, &route{key: p, subject: r.Subject, toks: toks, method: r.Method})
		if last := len(toks) - 1; r.Method == http.MethodGet && toks[last] == http.MethodGet {
			// HEAD travels on its own subject and takes GET's policies,
			// as ServeMux serves it with GET's handler.
			head := append(slices.Clone(toks[:last]), http.MethodHead)
			st.patterns = append(st.patterns, &route{key: p, subject: strings.Join(head, "."), toks: head, method: http.MethodHead})
		}
	}
	sortRoutes(st.patterns)
	return st, nil
}

func (p *policies) init(st *policyState, reg prometheus.Registerer) {
	p.cur.Store(st)
	p.changed = make(chan struct{}, 1)
	p.denied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "metro", Subsystem: "gateway", Name: "policy_denied_total",
		Help: "Requests refused by an edge policy before reaching NATS, by route pattern and status (401 token, 403 CORS, 429 rate limit).",
	}, []string{"route", "code"})
	reg.MustRegister(p.denied)
}

// SetPolicies replaces the edge policies (nil: none) for the requests
// that follow; the old set's key refreshing stops.
func (g *Gateway) SetPolicies(s *policy.Set) error {
	st, err := newPolicyState(s, g.prefix)
	if err != nil {
		return err
	}
	g.policies.cur.Store(st)
	select {
	case g.policies.changed <- struct{}{}:
	default:
	}
	return nil
}

// Policies returns the current policy set, nil for none.
func (g *Gateway) Policies() *policy.Set {
	if st := g.policies.cur.Load(); st != nil {
		return st.set
	}
	return nil
}

// runPolicies runs the current set's background work (JWKS refreshes)
// until ctx ends, moving to a new set when SetPolicies installs one.
func (g *Gateway) runPolicies(ctx context.Context) {
	for {
		st := g.policies.cur.Load()
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if st != nil {
				st.set.Run(sctx)
			}
		}()
		select {
		case <-ctx.Done():
		case <-g.policies.changed:
		}
		cancel()
		<-done
		if ctx.Err() != nil {
			return
		}
	}
}

// admit applies the edge policies to a request whose route lookup gave rt
// (nil: none) and returns false when it has been answered. Its claims, if
// a token was verified, are left in claims.
func (g *Gateway) admit(st *policyState, w http.ResponseWriter, r *http.Request, rid string, rs routes, rt *route, x *exchange, claims *string) bool {
	pr := policy.Request{
		Methods:  func() []string { return rs.methodsFor(x.subject) },
		ClientIP: func() string { return g.clientIP(r) },
	}
	if rt != nil {
		pr.Matched = true
		x.route = rt
		if prt, _ := st.patterns.match(x.subject); prt != nil {
			pr.Pattern = prt.key
		}
	}
	v := st.set.Admit(w, r, pr)
	if v.Claims != nil {
		*claims = v.Claims.Raw
	}
	if v.Status == 0 {
		return true
	}
	x.status, x.err = v.Status, v.Detail
	if v.Written {
		return false
	}
	pattern := unmatchedRoute
	if rt != nil {
		pattern = rt.pattern
	}
	g.policies.denied.WithLabelValues(pattern, fmt.Sprint(v.Status)).Inc()
	wire.WriteProblem(w, v.Status, v.Detail, rid, v.RetryAfter)
	return false
}

// methodsFor lists the methods that routes of subj's path accept, for a
// CORS preflight; a route of every method allows the usual ones.
func (rs routes) methodsFor(subj string) []string {
	var out []string
	for _, r := range rs {
		if !matchTokens(r.toks, subj, true) {
			continue
		}
		if r.method == "" {
			out = append(out, http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete)
			continue
		}
		out = append(out, r.method)
	}
	if len(out) == 0 {
		return nil
	}
	return strings.Split(allowHeader(out), ", ")
}

// clientIP is the address a rate limit counts by: the peer, or, when the
// peer is a trusted proxy, the nearest address in X-Forwarded-For that is
// not one (the rightmost untrusted hop: the leftmost could be forged).
func (g *Gateway) clientIP(r *http.Request) string {
	peer := r.RemoteAddr
	if h, _, err := net.SplitHostPort(peer); err == nil {
		peer = h
	}
	if !g.trusted(peer) {
		return peer
	}
	var hops []string
	for _, v := range r.Header["X-Forwarded-For"] {
		for h := range strings.SplitSeq(v, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	for _, h := range slices.Backward(hops) {
		if h != "" && !g.trusted(h) {
			return h
		}
	}
	return peer
}
