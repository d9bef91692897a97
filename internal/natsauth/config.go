package natsauth

import (
	"maps"
	"slices"
	"time"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/subject"
)

// replyMargin is how long past the longest gateway timeout a worker may
// still answer: a reply after the gateway gave up is useless, but one
// that races the deadline should not be refused.
const replyMargin = 30 * time.Second

// FromConfig is the Project that c describes. Mistakes in the keys it
// reads (workers.NAME.routes, workers.NAME.calls) name file, line and key.
func FromConfig(c *config.Config) (Project, error) {
	p := Project{Prefix: c.Gateway.Prefix}
	longest := c.Gateway.Timeout.Std()
	for _, r := range c.Gateway.Routes {
		p.GatewayRoutes = append(p.GatewayRoutes, r.Match)
		longest = max(longest, r.Timeout.Std())
	}
	p.ReplyTTL = max(DefaultReplyTTL, longest+replyMargin)
	for _, name := range slices.Sorted(maps.Keys(c.Workers)) {
		w := c.Workers[name]
		key := "workers." + name
		for _, r := range w.Routes {
			rt, err := subject.ParsePattern(r)
			if err == nil {
				_, err = rt.Subscriptions(p.Prefix)
			}
			if err != nil {
				return Project{}, c.Errorf(key+".routes", "%v", err)
			}
		}
		for _, callee := range w.Calls {
			if _, ok := c.Workers[callee]; !ok {
				return Project{}, c.Errorf(key+".calls", "%q is not a worker of this project", callee)
			}
		}
		p.Workers = append(p.Workers, Worker{Name: name, Routes: w.Routes, Calls: w.Calls})
	}
	return p, nil
}
