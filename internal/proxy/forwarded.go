package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// DefaultTrustedProxies are the peers whose forwarding headers are kept
// when nothing is configured: loopback only, where a proxy on the same
// host sits. Private networks are not trusted by default: behind a load
// balancer that rewrites the source to a node's address, every client on
// the internet would arrive from one and could name any address it liked.
// metro deploy configures the cluster's own ranges for its Ingress.
var DefaultTrustedProxies = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

// ParseTrustedProxies parses CIDRs (a bare address is a /32 or /128).
func ParseTrustedProxies(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if !strings.Contains(c, "/") {
			a, err := netip.ParseAddr(c)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// forwarded returns the X-Forwarded-* headers to send for r. From a trusted
// proxy the incoming values are kept and the peer is appended to
// X-Forwarded-For, as nginx, HAProxy and Envoy do. From anyone else the
// incoming values are dropped and set from the connection, the stance of
// httputil.ReverseProxy's Rewrite hook (Go issue 50580), and untrusted is
// true so that the other headers naming the client (Forwarded, X-Real-IP,
// X-Forwarded-Port...) are dropped too: a client on the internet cannot
// forge its address.
func (g *Gateway) forwarded(r *http.Request) (xff, host, proto string, untrusted bool) {
	peer := r.RemoteAddr
	if h, _, err := net.SplitHostPort(peer); err == nil {
		peer = h
	}
	proto = "http"
	if r.TLS != nil {
		proto = "https"
	}
	host = r.Host
	xff = peer
	if !g.trusted(peer) {
		return xff, host, proto, true
	}
	if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 {
		xff = strings.Join(prior, ", ") + ", " + peer
	}
	if v := r.Header.Get("X-Forwarded-Host"); v != "" {
		host = v
	}
	if v := r.Header.Get("X-Forwarded-Proto"); v != "" {
		proto = v
	}
	return xff, host, proto, false
}

func (g *Gateway) trusted(peer string) bool {
	a, err := netip.ParseAddr(peer)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range g.trustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
