package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Env lists the environment variables ApplyEnv reads and the key each
// overrides. NATS_URL is spelled as every NATS tool spells it.
var Env = []struct{ Var, Key string }{
	{"METRO_LISTEN", "gateway.listen"},
	{"METRO_ADMIN", "gateway.admin"},
	{"METRO_PREFIX", "gateway.prefix"},
	{"METRO_TIMEOUT", "gateway.timeout"},
	{"METRO_MAX_BODY", "gateway.max_body"},
	{"METRO_MAX_IN_FLIGHT", "gateway.max_in_flight"},
	{"METRO_MAX_BODY_MEMORY", "gateway.max_body_memory"},
	{"METRO_TRUSTED_PROXIES", "gateway.trusted_proxies"},
	{"NATS_URL", "nats.url"},
	{"METRO_JWKS", "gateway.auth.jwt.jwks"},
	{"METRO_JWT_ISSUER", "gateway.auth.jwt.issuer"},
	{"METRO_JWT_AUDIENCE", "gateway.auth.jwt.audience"},
	{"METRO_CORS_ORIGINS", "gateway.cors.origins"},
	{"METRO_RATE_LIMIT", "gateway.rate_limit.rate"},
}

// ApplyEnv overrides the file with the environment (an empty variable is
// unset). A bad value is an *Error naming the variable, not the file,
// since that is where the user must fix it. Pass os.Getenv; tests pass a
// map's lookup.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	var errs []error
	for _, e := range Env {
		v := getenv(e.Var)
		if v == "" {
			continue
		}
		if err := c.set(e.Key, v); err != nil {
			errs = append(errs, &Error{File: c.Path, Key: e.Key, Source: e.Var, Msg: err.Error()})
			continue
		}
		// A later check of the value (Validate) names the variable too.
		c.SetBy(e.Key, e.Var)
	}
	return errors.Join(errs...)
}

// set assigns one overridable key from its string form, checked as the
// file's value would be.
func (c *Config) set(key, v string) error {
	g := &c.Gateway
	switch key {
	case "gateway.listen":
		if err := checkAddr(v, false); err != nil {
			return err
		}
		g.Listen = v
	case "gateway.admin":
		if err := checkAddr(v, true); err != nil {
			return err
		}
		g.Admin = v
	case "gateway.prefix":
		if err := CheckPrefix(v); err != nil {
			return err
		}
		g.Prefix = v
	case "gateway.timeout":
		d, err := ParseDuration(v)
		if err != nil {
			return err
		}
		if d <= 0 {
			return errors.New("must be greater than 0")
		}
		g.Timeout = d
	case "gateway.max_body":
		b, err := ParseByteSize(v)
		if err != nil {
			return err
		}
		if b <= 0 {
			return errors.New("must be greater than 0")
		}
		g.MaxBody = b
	case "gateway.max_in_flight":
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		if n < 0 {
			return errors.New("must not be negative (0: no limit)")
		}
		g.MaxInFlight = n
	case "gateway.max_body_memory":
		b, err := ParseByteSize(v)
		if err != nil {
			return err
		}
		g.MaxBodyMemory = b
	case "gateway.trusted_proxies":
		// Comma-separated CIDRs; "none" trusts no peer, not even loopback.
		cidrs := []string{}
		if v != "none" {
			for _, p := range strings.Split(v, ",") {
				p = strings.TrimSpace(p)
				if _, err := netip.ParsePrefix(p); err != nil {
					return fmt.Errorf("%q is not a CIDR (write e.g. 10.0.0.0/8, or none)", p)
				}
				cidrs = append(cidrs, p)
			}
		}
		g.TrustedProxies = cidrs
	case "nats.url":
		c.NATS.URL = v
	default:
		return c.setPolicy(key, v)
	}
	return nil
}
