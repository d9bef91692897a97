package devserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/micro"

	"github.com/metropolis-dev/metro/internal/devstate"
	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/natsconn"
	"github.com/metropolis-dev/metro/internal/natstest"
)

func TestRouteRows(t *testing.T) {
	svc := func(name, id string, patterns ...string) discovery.Service {
		s := discovery.Service{Name: name, ID: id}
		for _, p := range patterns {
			m, path, _ := strings.Cut(p, " ")
			s.Routes = append(s.Routes, discovery.Route{Method: m, Pattern: p, Subject: "subj:" + path})
		}
		return s
	}
	tests := []struct {
		name string
		in   []discovery.Service
		want []RouteRow
	}{
		{"none", nil, []RouteRow{}},
		{
			"replicas are counted, rows sorted by path then method",
			[]discovery.Service{
				svc("catalog", "a", "GET /products", "POST /products"),
				svc("catalog", "b", "GET /products", "POST /products"),
				svc("orders", "c", "GET /orders/{id}"),
			},
			[]RouteRow{
				{"GET", "/orders/{id}", "orders", 1, "subj:/orders/{id}", ""},
				{"GET", "/products", "catalog", 2, "subj:/products", ""},
				{"POST", "/products", "catalog", 2, "subj:/products", ""},
			},
		},
		{
			"two services on one route are two rows",
			[]discovery.Service{svc("b", "1", "GET /x"), svc("a", "2", "GET /x")},
			[]RouteRow{{"GET", "/x", "a", 1, "subj:/x", "a"}, {"GET", "/x", "b", 1, "subj:/x", "a"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := routeRows(tt.in)
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(tt.want)
			if string(gj) != string(wj) {
				t.Errorf("got %s\nwant %s", gj, wj)
			}
		})
	}
}

func TestBanner(t *testing.T) {
	got := banner(bannerInfo{
		elapsed: 2345 * time.Millisecond,
		gateway: "http://localhost:8080",
		admin:   "http://localhost:9090",
		gwAll:   true,
		nats:    "nats://127.0.0.1:4222",
		monitor: "http://127.0.0.1:8222",
		rows: []RouteRow{
			{Method: "GET", Path: "/products", Worker: "catalog", Replicas: 2},
			{Method: "GET", Path: "/products/{id}", Worker: "catalog", Replicas: 2},
			{Method: "HEAD", Path: "/products/{id}", Worker: "catalog", Replicas: 2},
			{Method: "POST", Path: "/orders", Worker: "orders", Replicas: 1},
			{Method: "HEAD", Path: "/orders", Worker: "orders", Replicas: 1},
			{Method: "", Path: "/files/{path...}", Worker: "files", Replicas: 1},
		},
		notes: []string{"notify: announced no service named \"notify\" within 30s; it runs, and reloads without waiting for one"},
	})
	golden(t, "banner.golden", got)
}

// addService registers a micro service announcing routes the way metro
// workers do (endpoint metadata): pattern -> subject.
func addService(t *testing.T, s *server.Server, name string, routes [][2]string) {
	t.Helper()
	nc := natstest.Connect(t, s)
	svc, err := micro.AddService(nc, micro.Config{Name: name, Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop() }) //nolint:errcheck
	for i, r := range routes {
		m, p, _ := strings.Cut(r[0], " ")
		err := svc.AddEndpoint("r"+strconv.Itoa(i), micro.HandlerFunc(func(micro.Request) {}),
			micro.WithEndpointSubject(r[1]),
			micro.WithEndpointMetadata(map[string]string{discovery.MetaMethod: m, discovery.MetaPath: p}))
		if err != nil {
			t.Fatal(err)
		}
	}
	// The subscriptions are only buffered until flushed; the test's INFO
	// request comes from another connection.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	s := natstest.Run(t)
	catalog := [][2]string{{"GET /products", "products.GET"}, {"HEAD /products", "products.HEAD"}, {"GET /products/{id}", "products.*.GET"}}
	addService(t, s, "catalog", catalog)
	addService(t, s, "catalog", catalog)
	addService(t, s, "orders", [][2]string{{"POST /orders", "orders.POST"}})

	stateDir := t.TempDir()
	if err := devstate.Write(stateDir, devstate.State{NATSURL: s.ClientURL(), PID: 1}); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(stateDir, "workers", "catalog")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) string { return "" }
	env := func(k string) string {
		if k == "NATS_URL" {
			return s.ClientURL()
		}
		return ""
	}
	tests := []struct {
		name   string
		opts   RoutesOptions
		golden string
	}{
		{"server flag, not a terminal: JSON", RoutesOptions{Server: s.ClientURL(), Getenv: noEnv}, "routes.json.golden"},
		{"terminal: table", RoutesOptions{Server: s.ClientURL(), Getenv: noEnv, TTY: true}, "routes.table.golden"},
		{"terminal with --json", RoutesOptions{Server: s.ClientURL(), Getenv: noEnv, TTY: true, JSON: true}, "routes.json.golden"},
		{"NATS_URL", RoutesOptions{Getenv: env, Dir: t.TempDir()}, "routes.json.golden"},
		{"dev.json found from a subdirectory", RoutesOptions{Getenv: noEnv, Dir: sub}, "routes.json.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			tt.opts.Out = &out
			tt.opts.Wait = time.Second
			if err := Routes(t.Context(), tt.opts); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, out.String())
		})
	}

	t.Run("nothing to ask", func(t *testing.T) {
		var out bytes.Buffer
		err := Routes(t.Context(), RoutesOptions{Getenv: noEnv, Dir: t.TempDir(), Out: &out})
		if !errors.Is(err, natsconn.ErrNoServer) {
			t.Fatalf("err = %v, want ErrNoServer", err)
		}
	})
	t.Run("server down", func(t *testing.T) {
		var out bytes.Buffer
		err := Routes(t.Context(), RoutesOptions{Server: "nats://127.0.0.1:1", Getenv: noEnv, Out: &out})
		if err == nil || !strings.Contains(err.Error(), "connecting to NATS at nats://127.0.0.1:1") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestContestedRoute: a route that two services announce names its owner
// in the table (the rule every gateway applies: the least name), and
// metro routes warns about it.
func TestContestedRoute(t *testing.T) {
	rows := routeRows([]discovery.Service{
		{Name: "orders-green", ID: "1", Protocol: "2", Routes: []discovery.Route{{Method: "POST", Pattern: "POST /orders", Subject: "orders.POST"}}},
		{Name: "orders-blue", ID: "2", Protocol: "2", Routes: []discovery.Route{{Method: "POST", Pattern: "POST /orders", Subject: "orders.POST"}}},
		{Name: "catalog", ID: "3", Protocol: "2", Routes: []discovery.Route{{Method: "GET", Pattern: "GET /products", Subject: "products.GET"}}},
	})
	var table, warn strings.Builder
	writeRouteTable(&table, rows, "", false)
	warnContested(&warn, rows)
	for _, want := range []string{"orders-blue (owner)", "orders-green (declines: orders-blue owns it)"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if strings.Contains(table.String(), "catalog (") {
		t.Errorf("an uncontested route is marked:\n%s", table.String())
	}
	if want := "warning: POST /orders is announced by orders-blue, orders-green; only orders-blue runs its requests\n"; warn.String() != want {
		t.Errorf("warning %q, want %q", warn.String(), want)
	}
}
