package discovery_test

import (
	"slices"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/discovery"
)

func TestOwnerOf(t *testing.T) {
	tests := []struct {
		services, legacy []string
		want             string
	}{
		{nil, nil, ""},
		{[]string{"orders"}, nil, "orders"},
		{[]string{"orders-green", "orders-blue"}, nil, "orders-blue"},
		{[]string{"B", "a"}, nil, "B"}, // byte order: upper case first
		{[]string{"aa-new", "zz-old"}, []string{"zz-old"}, "zz-old"},
		{[]string{"a", "b", "c"}, []string{"c", "b"}, "b"},
	}
	for _, tt := range tests {
		if got := discovery.OwnerOf(tt.services, tt.legacy); got != tt.want {
			t.Errorf("OwnerOf(%q, %q) = %q, want %q", tt.services, tt.legacy, got, tt.want)
		}
	}
}

func TestRegistry(t *testing.T) {
	orders := discovery.Route{Method: "POST", Pattern: "POST /orders", Subject: "orders.POST"}
	tail := discovery.Route{Method: "GET", Pattern: "GET /echo/{p...}", Subject: "echo.>"}
	special := discovery.Route{Method: "GET", Pattern: "GET /echo/special", Subject: "echo.special.GET"}
	svc := func(name, id, proto string, rs ...discovery.Route) discovery.Service {
		return discovery.Service{Name: name, ID: id, Protocol: proto, Routes: rs}
	}
	now := time.Unix(1000, 0)
	reg := discovery.NewRegistry(15 * time.Second)
	var changes []string
	reg.OnChange = func(st discovery.KeyState) { changes = append(changes, st.Route.Key()+"="+st.Owner) }

	reg.Seen(svc("orders-green", "g1", "2", orders), now)
	reg.Seen(svc("orders-blue", "b1", "2", orders), now)
	reg.Seen(svc("orders-blue", "b1", "2", orders), now) // seen again: no change
	st, _ := reg.State(orders.Key())
	if st.Owner != "orders-blue" || st.Instances != 2 || !st.Contested() || !st.Enforced() {
		t.Errorf("state %+v", st)
	}
	if want := []string{"POST orders.POST=orders-green", "POST orders.POST=orders-blue"}; !slices.Equal(changes, want) {
		t.Errorf("changes %q, want %q", changes, want)
	}

	// A goodbye hands the route over; a poll reply already on its way
	// does not revive the instance.
	reg.Gone("b1", now)
	reg.Seen(svc("orders-blue", "b1", "2", orders), now)
	if st, _ := reg.State(orders.Key()); st.Owner != "orders-green" || st.Instances != 1 {
		t.Errorf("after goodbye: %+v", st)
	}

	// A version-1 service owns what it shares; two cannot be held to once.
	reg.Seen(svc("zz-old", "z1", "", orders), now)
	if st, _ := reg.State(orders.Key()); st.Owner != "zz-old" || !st.Enforced() {
		t.Errorf("with a version-1 service: %+v", st)
	}
	reg.Seen(svc("yy-old", "y1", "1", orders), now)
	if st, _ := reg.State(orders.Key()); st.Owner != "yy-old" || st.Enforced() {
		t.Errorf("with two version-1 services: %+v", st)
	}

	// The most specific live route matches, as in ServeMux.
	reg.Seen(svc("echo", "e1", "2", tail), now)
	reg.Seen(svc("special", "s1", "2", special), now.Add(10*time.Second))
	if st, ok := reg.Match("echo.special.GET"); !ok || st.Route.Key() != special.Key() {
		t.Errorf("Match(echo.special.GET) = %+v, %v", st, ok)
	}
	if st, ok := reg.Match("echo.special.POST"); ok {
		t.Errorf("Match(echo.special.POST) = %+v: a GET tail took a POST", st)
	}
	// Unseen for longer than staleAfter, instances are gone; the special
	// route, seen later, lasts longer.
	reg.Expire(now.Add(20 * time.Second))
	if _, ok := reg.State(orders.Key()); ok {
		t.Error("stale instances kept")
	}
	if st, ok := reg.Match("echo.special.GET"); !ok || st.Route.Key() != special.Key() {
		t.Errorf("after expiry: Match = %+v, %v", st, ok)
	}
	if st, ok := reg.Match("echo.other.GET"); ok {
		t.Errorf("Match(echo.other.GET) = %+v: its instance is stale", st)
	}
}
