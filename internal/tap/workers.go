package tap

import (
	"strings"
	"time"

	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/subject"
)

// serviceTTL is how long a service's announcement counts after it was last
// heard: a few discovery rounds, so one lost reply does not blank a column.
const serviceTTL = 3 * workerRefresh

// workerRefresh is how often running services are asked for their routes.
const workerRefresh = 5 * time.Second

// workerIndex tells which service (the queue group that answers) covers a
// request subject, from the routes running services announce.
type workerIndex struct {
	services map[string]seenService // by instance id
	cache    map[string]cover       // by subject
}

// cover is what the index knows of one subject: the one service whose
// routes match it, or whether any does.
type cover struct {
	name string // "" when none or several
	any  bool
	// route is the pattern of the most specific route of that one
	// service that matches.
	route    string
	wildcard int // wildcard tokens in route's subscription
}

type seenService struct {
	svc  discovery.Service
	seen time.Time
}

func newWorkerIndex() *workerIndex {
	return &workerIndex{services: map[string]seenService{}, cache: map[string]cover{}}
}

func (w *workerIndex) add(s discovery.Service, now time.Time) {
	_, known := w.services[s.ID]
	w.services[s.ID] = seenService{svc: s, seen: now}
	if !known {
		clear(w.cache)
	}
}

func (w *workerIndex) prune(now time.Time) {
	for id, s := range w.services {
		if now.Sub(s.seen) > serviceTTL {
			delete(w.services, id)
			clear(w.cache)
		}
	}
}

// lookup names the one service whose routes match subj, and its route
// that does; when none or several (distinct queue groups each get a
// copy) do, the worker is unknown.
func (w *workerIndex) lookup(subj string) (name, route string) {
	c := w.cover(subj)
	if c.name == "" {
		return "", ""
	}
	return c.name, c.route
}

// unserved reports whether services are known but none announces subj:
// then nobody but tap listens to it.
func (w *workerIndex) unserved(subj string) bool {
	return len(w.services) > 0 && !w.cover(subj).any
}

func (w *workerIndex) cover(subj string) cover {
	if len(w.services) == 0 {
		return cover{}
	}
	if c, ok := w.cache[subj]; ok {
		return c
	}
	var c cover
services:
	for _, s := range w.services {
		for _, r := range s.svc.Routes {
			if !subject.Matches(r.Subject, subj) {
				continue
			}
			if c.any && c.name != s.svc.Name {
				c.name, c.route = "", ""
				break services
			}
			// Of one service's matching routes the one with fewer
			// wildcards is the more specific, as ServeMux would pick.
			wc := strings.Count(r.Subject, "*") + 2*strings.Count(r.Subject, ">")
			if !c.any || wc < c.wildcard {
				c.route, c.wildcard = r.Pattern, wc
			}
			c.name, c.any = s.svc.Name, true
		}
	}
	// Subjects carry path parameters, so the cache is bounded by wiping it.
	if len(w.cache) >= 4096 {
		clear(w.cache)
	}
	w.cache[subj] = c
	return c
}

// AddService records a service's announcement, so that requests on its
// routes name it as their worker.
func (p *Pairer) AddService(s discovery.Service, now time.Time) { p.workers.add(s, now) }
