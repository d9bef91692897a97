package proxy

import (
	"fmt"

	"github.com/metropolis-dev/metro/internal/config"
)

// ConfigFrom maps the gateway block of metro.yaml onto a gateway Config.
func ConfigFrom(c *config.Config) (Config, error) {
	g := c.Gateway
	out := Config{
		Prefix:   g.Prefix,
		Timeout:  g.Timeout.Std(),
		MaxBody:  g.MaxBody.Int64(),
		RouteTTL: g.RouteTTL.Std(),
		// In metro.yaml 0 is no limit; in Config, the default.
		MaxInFlight:   noneIfZero(g.MaxInFlight),
		MaxBodyMemory: int64(noneIfZero(g.BodyMemory())),
	}
	if g.TrustedProxies != nil {
		tp, err := ParseTrustedProxies(g.TrustedProxies)
		if err != nil {
			return out, c.Errorf("gateway.trusted_proxies", "%v", err)
		}
		out.TrustedProxies = tp
	}
	for i, r := range g.Routes {
		if _, err := routeOf(r.Match, g.Prefix); err != nil {
			return out, c.Errorf(fmt.Sprintf("gateway.routes[%d].match", i), "%v", err)
		}
		if r.Timeout == 0 && (r.Auth != "" || r.RateLimit != nil) {
			// Only policies: they apply to the routes the pattern
			// matches, and declare none.
			continue
		}
		out.Routes = append(out.Routes, RouteConfig{Match: r.Match, Timeout: r.Timeout.Std()})
	}
	p, err := PoliciesFrom(c)
	if err != nil {
		return out, err
	}
	out.Policies = p
	return out, nil
}

func noneIfZero[T int | config.ByteSize](v T) T {
	if v == 0 {
		return -1
	}
	return v
}
