package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/metropolis-dev/metro/internal/subject"
)

// Validate checks the whole config and returns every problem found, each an
// *Error located at the key it is about. Load calls it; commands that
// change the config from flags call it again.
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, c.Errorf(key, format, args...))
	}
	g := &c.Gateway
	if err := checkAddr(g.Listen, false); err != nil {
		add("gateway.listen", "%v", err)
	}
	if err := checkAddr(g.Admin, true); err != nil {
		add("gateway.admin", "%v", err)
	}
	if err := CheckPrefix(g.Prefix); err != nil {
		add("gateway.prefix", "%v", err)
	}
	if g.Timeout <= 0 {
		add("gateway.timeout", "must be greater than 0")
	}
	if g.RouteTTL <= 0 {
		add("gateway.route_ttl", "must be greater than 0")
	}
	if g.MaxBody <= 0 {
		add("gateway.max_body", "must be greater than 0")
	}
	if g.MaxInFlight < 0 {
		add("gateway.max_in_flight", "%d is negative (0: no limit)", g.MaxInFlight)
	}
	if g.MaxBodyMemory > 0 && g.MaxBodyMemory < g.HeldBody() && c.chose("gateway.max_body_memory") {
		add("gateway.max_body_memory", "%s is less than the %s of one body the gateway may hold (gateway.max_body, at most %s): a body of that size could never be read", g.MaxBodyMemory, g.HeldBody(), ByteSize(MaxHeldBody))
	}
	for i, p := range g.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			add(fmt.Sprintf("gateway.trusted_proxies[%d]", i), "%q is not a CIDR (write e.g. 10.0.0.0/8, or 203.0.113.7/32 for one address)", p)
		}
	}
	for i, r := range g.Routes {
		key := fmt.Sprintf("gateway.routes[%d]", i)
		if r.Match == "" {
			add(key+".match", "is required")
		} else if _, err := subject.ParsePattern(r.Match); err != nil {
			add(key+".match", "%v", err)
		}
		if r.Timeout < 0 || r.Timeout == 0 && c.Has(key+".timeout") {
			add(key+".timeout", "must be greater than 0 (leave it out for the gateway default)")
		}
	}
	errs = append(errs, c.validatePolicies()...)
	if c.NATS.Port < 0 || c.NATS.Port > 65535 {
		add("nats.port", "%d is not a port (0 to 65535; 0 picks a free one)", c.NATS.Port)
	}
	if strings.ContainsAny(c.NATS.URL, " \t\r\n") {
		add("nats.url", "%q contains white space (separate several URLs with commas)", c.NATS.URL)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Workers)) {
		errs = append(errs, c.validateWorker(name, c.Workers[name])...)
	}
	errs = append(errs, c.validateDeploy()...)
	return errors.Join(errs...)
}

func (c *Config) validateWorker(name string, w Worker) []error {
	var errs []error
	key := "workers." + name
	add := func(k, format string, args ...any) {
		errs = append(errs, c.Errorf(k, format, args...))
	}
	if !IsDNSLabel(name) {
		add(key, "worker name %q is not a DNS-1123 label (lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit)", name)
	}
	if IsReservedWorkerName(name) {
		add(key, "the worker name %q is metro's own (reserved: %s); rename the worker", name, strings.Join(ReservedWorkerNames, ", "))
	}
	switch n := countSet(w.Path, w.Run, w.Mock); {
	case n > 1:
		set := setNames(w)
		both := "both " + set[0] + " and " + set[1]
		if n == 3 {
			both = "path, run and mock"
		}
		add(key, "has %s; give exactly one (path: a Go package to build, run: a command, mock: a recording to answer from)", both)
	case n == 0:
		add(key, "needs path (a Go package to build), run (a command) or mock (a recording to answer from)")
	case w.Mock != "":
		if err := c.checkFile(w.Mock); err != nil {
			add(key+".mock", "%v", err)
		}
	case w.Path != "":
		if err := c.checkDir(w.Path); err != nil {
			add(key+".path", "%v", err)
		}
	}
	if w.Dir != "" {
		if err := c.checkDir(w.Dir); err != nil {
			add(key+".dir", "%v", err)
		}
	}
	if w.Replicas < 0 {
		add(key+".replicas", "%d is negative", w.Replicas)
	}
	if w.Replicas > MaxReplicas {
		add(key+".replicas", "%d is more than %d (metro dev runs each replica as a process; to scale further in Kubernetes, set max_replicas)", w.Replicas, MaxReplicas)
	}
	if w.MaxReplicas > MaxAutoscaleReplicas {
		add(key+".max_replicas", "%d is more than %d", w.MaxReplicas, MaxAutoscaleReplicas)
	}
	if w.MaxReplicas != 0 && w.MaxReplicas < max(w.Replicas, 1) {
		add(key+".max_replicas", "%d is less than replicas (%d)", w.MaxReplicas, max(w.Replicas, 1))
	}
	for i, g := range w.Watch {
		if !doublestar.ValidatePattern(g) {
			add(fmt.Sprintf("%s.watch[%d]", key, i), "%q is not a valid glob", g)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(w.Env)) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			add(key+".env", "%q is not an environment variable name", k)
		}
	}
	return errs
}

func (c *Config) validateDeploy() []error {
	var errs []error
	add := func(k, format string, args ...any) {
		errs = append(errs, c.Errorf(k, format, args...))
	}
	d := &c.Deploy
	if d.Namespace != "" && !IsDNSLabel(d.Namespace) {
		add("deploy.namespace", "%q is not a DNS-1123 label", d.Namespace)
	}
	if d.NATS.Replicas < 1 {
		add("deploy.nats.replicas", "%d: a NATS cluster needs at least 1 server (3 tolerates one down)", d.NATS.Replicas)
	}
	if d.NATS.Replicas > MaxReplicas {
		add("deploy.nats.replicas", "%d is more than %d", d.NATS.Replicas, MaxReplicas)
	}
	if d.Gateway.Replicas < 1 {
		add("deploy.gateway.replicas", "%d: the gateway needs at least 1 replica", d.Gateway.Replicas)
	}
	if d.Gateway.Replicas > MaxReplicas {
		add("deploy.gateway.replicas", "%d is more than %d (to scale further, set deploy.gateway.max_replicas)", d.Gateway.Replicas, MaxReplicas)
	}
	if d.Gateway.MaxReplicas > MaxAutoscaleReplicas {
		add("deploy.gateway.max_replicas", "%d is more than %d", d.Gateway.MaxReplicas, MaxAutoscaleReplicas)
	}
	if d.Gateway.MaxReplicas < d.Gateway.Replicas {
		add("deploy.gateway.max_replicas", "%d is less than deploy.gateway.replicas (%d)", d.Gateway.MaxReplicas, d.Gateway.Replicas)
	}
	if d.Ingress != nil && d.Ingress.Host == "" {
		add("deploy.ingress.host", "is required when deploy.ingress is set")
	}
	if d.Ingress != nil {
		for i, p := range d.Ingress.TrustedProxies {
			if _, err := netip.ParsePrefix(p); err != nil {
				add(fmt.Sprintf("deploy.ingress.trusted_proxies[%d]", i), "%q is not a CIDR (write e.g. 10.244.0.0/16, the cluster's pod network)", p)
			}
		}
	}
	if e := d.OTel.Endpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("deploy.otel.endpoint", "%q is not an http:// or https:// URL of an OTLP/HTTP collector (e.g. http://otel-collector:4318)", e)
		}
	}
	return errs
}

func countSet(vs ...string) int {
	n := 0
	for _, v := range vs {
		if v != "" {
			n++
		}
	}
	return n
}

func setNames(w Worker) []string {
	var out []string
	for _, f := range []struct{ name, v string }{{"path", w.Path}, {"run", w.Run}, {"mock", w.Mock}} {
		if f.v != "" {
			out = append(out, f.name)
		}
	}
	return out
}

// checkFile reports whether p, relative to the file's directory, is a
// regular file.
func (c *Config) checkFile(p string) error {
	return c.checkPath(p, "file", " (record one with metro tap --record "+p+")")
}

// checkDir reports whether p, relative to the file's directory, is a directory.
func (c *Config) checkDir(p string) error { return c.checkPath(p, "directory", "") }

// checkPath reports whether p, relative to the file's directory, is a
// regular file or a directory (kind); hint follows "does not exist".
func (c *Config) checkPath(p, kind, hint string) error {
	full := p
	if !filepath.IsAbs(p) {
		full = filepath.Join(c.Dir, p)
	}
	fi, err := os.Stat(full)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s does not exist%s", p, hint)
	case err != nil:
		return err
	case kind == "directory" && !fi.IsDir(), kind == "file" && !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a %s", p, kind)
	}
	return nil
}

// checkAddr checks a listen address "host:port" (":8080", "127.0.0.1:0").
func checkAddr(a string, emptyOK bool) error {
	if a == "" {
		if emptyOK {
			return nil
		}
		return errors.New("is required (e.g. \":8080\")")
	}
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. \":8080\")", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", a, port)
	}
	return nil
}

// CheckPrefix reports whether p can prefix every subject (see
// subject.CheckPrefix, where the rule lives).
func CheckPrefix(p string) error { return subject.CheckPrefix(p) }

// IsDNSLabel reports whether s is an RFC 1123 label, as Kubernetes names
// of Services and Deployments must be: lower-case letters, digits and '-',
// 1 to 63 of them, starting and ending with a letter or digit.
func IsDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '-' || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}
