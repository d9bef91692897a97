package subject

import "net/http"

// Subscriptions are the subjects a worker serving r under prefix
// subscribes to: the route's own, and for a GET route without a tail its
// HEAD twin too, because ServeMux answers HEAD with GET handlers and HEAD
// requests travel on their own subject.
func (r Route) Subscriptions(prefix string) ([]string, error) {
	s, err := r.Subscription(prefix)
	if err != nil {
		return nil, err
	}
	subs := []string{s}
	if r.Method == http.MethodGet && !r.HasTail() {
		h := r
		h.Method = http.MethodHead
		hs, err := h.Subscription(prefix)
		if err != nil {
			return nil, err
		}
		subs = append(subs, hs)
	}
	return subs, nil
}
