package policy

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CORSConfig is gateway.cors.
type CORSConfig struct {
	Origins     []string // exact origins, or "*" for any (not with Credentials)
	Headers     []string // request headers a browser may send
	Credentials bool
	MaxAge      time.Duration
}

// CheckOrigin reports whether o can be listed in gateway.cors.origins: "*"
// or an origin as a browser serialises it (RFC 6454 6.2): scheme, host
// and an optional port, no path.
func CheckOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an origin (write scheme://host[:port], e.g. https://app.example.com, or \"*\")", o)
	}
	if o != strings.ToLower(o) {
		return fmt.Errorf("%q: browsers send origins in lower case; write it so", o)
	}
	return nil
}

// ErrWildcardCredentials is the Fetch standard's rule: a response to a
// request with credentials cannot allow every origin.
var ErrWildcardCredentials = errors.New(`"*" cannot be used with credentials: true (browsers refuse it); list the origins`)

// CORS answers preflight requests and marks actual responses, following
// the CORS protocol of the Fetch standard (fetch.spec.whatwg.org, 3.2).
type CORS struct {
	any         bool
	origins     map[string]bool
	headers     string
	credentials bool
	maxAge      string
}

// NewCORS checks cfg and returns its policy.
func NewCORS(cfg CORSConfig) (*CORS, error) {
	c := &CORS{origins: map[string]bool{}, credentials: cfg.Credentials}
	for _, o := range cfg.Origins {
		if err := CheckOrigin(o); err != nil {
			return nil, err
		}
		if o == "*" {
			c.any = true
		}
		c.origins[o] = true
	}
	if c.any && c.credentials {
		return nil, ErrWildcardCredentials
	}
	hs := make([]string, len(cfg.Headers))
	for i, h := range cfg.Headers {
		hs[i] = http.CanonicalHeaderKey(strings.TrimSpace(h))
	}
	c.headers = strings.Join(hs, ", ")
	if cfg.MaxAge > 0 {
		c.maxAge = strconv.Itoa(int(cfg.MaxAge / time.Second))
	}
	return c, nil
}

// IsPreflight reports whether r is a CORS preflight: OPTIONS with an
// Origin and an Access-Control-Request-Method. Any other OPTIONS request
// is an ordinary request for a worker.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

func (c *CORS) allowed(origin string) bool {
	return origin != "" && (c.any || c.origins[origin])
}

// allowOrigin is the Access-Control-Allow-Origin value for an allowed
// origin: "*" only when every origin is allowed without credentials,
// which lets shared caches keep one copy.
func (c *CORS) allowOrigin(origin string) string {
	if c.any {
		return "*"
	}
	return origin
}

// Preflight answers a preflight for a path whose routes accept methods.
// It returns the status written: 204, or 403 when the origin or the
// requested method is not allowed (then no CORS header is sent, so the
// browser stops).
func (c *CORS) Preflight(w http.ResponseWriter, r *http.Request, methods []string) (status int, detail string) {
	h := w.Header()
	h["Vary"] = []string{"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
	origin := r.Header.Get("Origin")
	if !c.allowed(origin) {
		return http.StatusForbidden, "origin " + origin + " is not allowed"
	}
	want := r.Header.Get("Access-Control-Request-Method")
	if !slices.Contains(methods, want) {
		return http.StatusForbidden, want + " is not allowed here; allowed: " + strings.Join(methods, ", ")
	}
	h["Access-Control-Allow-Origin"] = []string{c.allowOrigin(origin)}
	if c.credentials {
		h["Access-Control-Allow-Credentials"] = []string{"true"}
	}
	h["Access-Control-Allow-Methods"] = []string{strings.Join(methods, ", ")}
	if c.headers != "" {
		h["Access-Control-Allow-Headers"] = []string{c.headers}
	}
	if c.maxAge != "" {
		h["Access-Control-Max-Age"] = []string{c.maxAge}
	}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent, ""
}

// Actual adds the CORS headers of a response to an actual request: the
// allowed origin, credentials, and Vary: Origin, since the answer differs
// by origin and a cache must not serve one origin's copy to another.
func (c *CORS) Actual(h http.Header, r *http.Request) {
	if !c.any {
		h.Add("Vary", "Origin")
	}
	origin := r.Header.Get("Origin")
	if !c.allowed(origin) {
		return
	}
	h["Access-Control-Allow-Origin"] = []string{c.allowOrigin(origin)}
	if c.credentials {
		h["Access-Control-Allow-Credentials"] = []string{"true"}
	}
	h["Access-Control-Expose-Headers"] = exposed
}

// exposed are the gateway's own response headers a page may read: the
// request id for support, and the rate limit state for backing off.
var exposed = []string{"X-Request-Id, Retry-After, RateLimit, RateLimit-Policy"}
