package devserver

import (
	"path/filepath"
	"reflect"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// applyConfig reads metro.yaml again after it changed. The gateway's edge
// policies (auth, cors, rate_limit, and those of its routes) take effect
// at once, for the requests that follow: nothing restarts, so no request
// is dropped. Any other change is only announced, since workers, ports and
// the route table are set up once.
func (d *session) applyConfig() {
	cfg, err := d.reload()
	if err != nil {
		d.con.printf("%v", err)
		d.con.printf("%s not applied; the running configuration stays", filepath.Base(d.cfg.Path))
		return
	}
	prev := d.applied
	if prev == nil {
		prev = d.cfg
	}
	if !reflect.DeepEqual(policyPart(prev), policyPart(cfg)) {
		set, err := proxy.PoliciesFrom(cfg)
		if err == nil {
			err = d.setPolicies(set)
		}
		if err != nil {
			d.con.printf("%v", err)
			d.con.printf("gateway policies not applied; the running ones stay")
			return
		}
		d.con.printf("applied the gateway's auth, cors and rate_limit from %s", filepath.Base(cfg.Path))
	}
	if !reflect.DeepEqual(restPart(prev), restPart(cfg)) {
		d.con.printf("%s changed; restart metro dev (Ctrl-C, then run it again) to apply it", filepath.Base(cfg.Path))
	}
	d.applied = cfg
}

type policyView struct {
	Auth      *config.Auth
	CORS      *config.CORS
	RateLimit *config.RateLimit
	Routes    []config.RouteConfig
}

// policyPart is what applyConfig can apply live.
func policyPart(c *config.Config) policyView {
	v := policyView{Auth: c.Gateway.Auth, CORS: c.Gateway.CORS, RateLimit: c.Gateway.RateLimit}
	for _, r := range c.Gateway.Routes {
		if r.Auth != "" || r.RateLimit != nil {
			v.Routes = append(v.Routes, config.RouteConfig{Match: r.Match, Auth: r.Auth, RateLimit: r.RateLimit})
		}
	}
	return v
}

// restPart is the rest of what metro dev runs by, without the policies
// and the line numbers that an edit elsewhere shifts.
func restPart(c *config.Config) any {
	g := c.Gateway
	g.Auth, g.CORS, g.RateLimit = nil, nil, nil
	g.Routes = nil
	for _, r := range c.Gateway.Routes {
		if r.Timeout != 0 || r.Auth == "" && r.RateLimit == nil {
			g.Routes = append(g.Routes, config.RouteConfig{Match: r.Match, Timeout: r.Timeout})
		}
	}
	workers := map[string]config.Worker{}
	for n, w := range c.Workers {
		w.Line = 0
		workers[n] = w
	}
	return struct {
		Name    string
		Gateway config.Gateway
		NATS    config.NATS
		Workers map[string]config.Worker
	}{c.Name, g, c.NATS, workers}
}
