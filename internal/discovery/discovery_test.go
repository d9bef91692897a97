package discovery_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/worker"
)

func TestFromInfo(t *testing.T) {
	meta := func(m, p string) map[string]string {
		return map[string]string{discovery.MetaMethod: m, discovery.MetaPath: p}
	}
	tests := []struct {
		name   string
		prefix string
		ep     micro.EndpointInfo
		want   string // "METHOD pattern subject", "" when left out
	}{
		{"metro endpoint", "", micro.EndpointInfo{Subject: "users.*.GET", Metadata: meta("GET", "/users/{id}")}, "GET|GET /users/{id}|users.*.GET"},
		{"metro tail", "", micro.EndpointInfo{Subject: "files.>", Metadata: meta("POST", "/files/{p...}")}, "POST|POST /files/{p...}|files.>"},
		{"metro, no method", "", micro.EndpointInfo{Subject: "any.*", Metadata: map[string]string{discovery.MetaPath: "/any"}}, "|/any|any.*"},
		{"metro under a prefix", "api", micro.EndpointInfo{Subject: "api.users.POST", Metadata: meta("POST", "/users")}, "POST|POST /users|api.users.POST"},
		{"metro under another prefix", "api", micro.EndpointInfo{Subject: "web.users.POST", Metadata: meta("POST", "/users")}, ""},
		{"metadata not matching the subject", "", micro.EndpointInfo{Subject: "users.POST", Metadata: meta("GET", "/users")}, ""},
		{"bad metadata pattern", "", micro.EndpointInfo{Subject: "users.GET", Metadata: meta("GET", "users")}, ""},
		{"plain micro endpoint", "", micro.EndpointInfo{Subject: "sum.POST"}, "POST|POST /sum|sum.POST"},
		{"plain micro wildcard", "", micro.EndpointInfo{Subject: "users.*.GET"}, "GET|GET /users/{p1}|users.*.GET"},
		{"plain micro tail", "", micro.EndpointInfo{Subject: "files.>"}, "|/files/{rest...}|files.>"},
		{"plain micro under a prefix", "api", micro.EndpointInfo{Subject: "api.sum.POST"}, "POST|POST /sum|api.sum.POST"},
		{"prefix read as a path without one", "", micro.EndpointInfo{Subject: "api.sum.POST"}, "POST|POST /api/sum|api.sum.POST"},
		{"no method token", "", micro.EndpointInfo{Subject: "orders.created"}, ""},
		{"encoded token", "", micro.EndpointInfo{Subject: "a%20b.GET"}, "GET|GET /a%20b|a%20b.GET"},
		{"not a token", "", micro.EndpointInfo{Subject: "a b.GET"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := discovery.FromInfo(micro.Info{
				ServiceIdentity: micro.ServiceIdentity{Name: "svc", ID: "id1", Version: "1.0.0"},
				Endpoints:       []micro.EndpointInfo{tc.ep},
			}, tc.prefix)
			if s.Name != "svc" || s.ID != "id1" || s.Version != "1.0.0" {
				t.Errorf("service %+v", s)
			}
			got := ""
			if len(s.Routes) == 1 {
				r := s.Routes[0]
				got = r.Method + "|" + r.Pattern + "|" + r.Subject
			} else if len(s.Routes) > 1 {
				t.Fatalf("routes %+v", s.Routes)
			}
			if got != tc.want {
				t.Errorf("route %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCollect asks a real server with a metro worker and a plain micro
// service running, and gets both, sorted, with their routes.
func TestCollect(t *testing.T) {
	ns := natstest.Run(t)
	nc, adderConn := natstest.Connect(t, ns), natstest.Connect(t, ns)
	svc, err := micro.AddService(adderConn, micro.Config{
		Name: "adder", Version: "2.0.0",
		Endpoint: &micro.EndpointConfig{Subject: "sum.POST", Handler: micro.HandlerFunc(func(r micro.Request) { r.Respond(nil) })},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop() })
	// AddService only buffers its subscriptions; until the server has them,
	// an INFO request from another connection would not reach the service.
	if err := adderConn.Flush(); err != nil {
		t.Fatal(err)
	}
	w := worker.New(worker.Options{Name: "users", URL: ns.ClientURL(), Logger: slog.New(slog.DiscardHandler)})
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, p := range []string{"GET /users/{id}", "POST /users"} {
		if err := w.Handle(p, noop); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-w.Ready()

	svcs, err := discovery.Collect(context.Background(), nc, "", 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(len(svcs))
	for _, s := range svcs {
		got += fmt.Sprintf(" %s@%s:", s.Name, s.Version)
		for _, r := range s.Routes {
			got += " [" + r.Pattern + "]"
		}
	}
	want := "2 adder@2.0.0: [POST /sum] users@0.0.0: [GET /users/{id}] [HEAD /users/{id}] [POST /users]"
	if got != want {
		t.Fatalf("collected\n%s\nwant\n%s", got, want)
	}
	if svcs[1].ID != w.ID() {
		t.Errorf("worker id %q, want %q", svcs[1].ID, w.ID())
	}
}

// TestWatch: services are asked again every interval, so one that starts
// later is seen; Watch returns when its context ends.
func TestWatch(t *testing.T) {
	ns := natstest.Run(t)
	nc := natstest.Connect(t, ns)
	ctx, cancel := context.WithCancel(context.Background())
	seen := make(chan discovery.Service, 64)
	done := make(chan error, 1)
	go func() {
		done <- discovery.Watch(ctx, nc, "", 50*time.Millisecond, func(s discovery.Service) {
			select {
			case seen <- s:
			default:
			}
		})
	}()
	svc, err := micro.AddService(natstest.Connect(t, ns), micro.Config{
		Name: "late", Version: "1.0.0",
		Endpoint: &micro.EndpointConfig{Subject: "late.GET", Handler: micro.HandlerFunc(func(r micro.Request) {})},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	select {
	case s := <-seen:
		if s.Name != "late" || len(s.Routes) != 1 || s.Routes[0].Pattern != "GET /late" {
			t.Errorf("service %+v", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a service started after Watch was never seen")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watch: %v", err)
	}
}
