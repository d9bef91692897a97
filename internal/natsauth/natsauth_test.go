package natsauth_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/natsauth"
	"github.com/metropolis-dev/metro/internal/natstest"
)

// startBus is a real nats-server running the configuration natsauth
// renders for p, read as nats-server reads it, so what runs here is what
// metro dev and a cluster run.
func startBus(t *testing.T, p natsauth.Project) *natstest.Bus {
	t.Helper()
	return natstest.Locked(t, p)
}

// refusal does op and returns the server's refusal of it, nil when the
// server took it. nats-server sends -ERR before the PONG of the flush
// that follows, so once Flush returns a refusal is the last error.
func refusal(t *testing.T, nc *nats.Conn, op func() error) error {
	t.Helper()
	before := nc.LastError()
	if err := op(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if after := nc.LastError(); after != nil && after != before {
		return after
	}
	return nil
}

type check struct {
	id    string
	what  string // "sub", "qsub QUEUE", "pub"
	subj  string
	allow bool
}

func (c check) run(t *testing.T, nc *nats.Conn) {
	t.Helper()
	err := refusal(t, nc, func() error {
		switch {
		case c.what == "pub":
			return nc.Publish(c.subj, nil)
		case c.what == "sub":
			_, err := nc.SubscribeSync(c.subj)
			return err
		default:
			_, err := nc.QueueSubscribeSync(c.subj, strings.TrimPrefix(c.what, "qsub "))
			return err
		}
	})
	switch {
	case c.allow && err != nil:
		t.Errorf("%s %s %s: refused: %v", c.id, c.what, c.subj, err)
	case !c.allow && err == nil:
		t.Errorf("%s %s %s: allowed, want refused", c.id, c.what, c.subj)
	case !c.allow && (!errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), `"`+c.subj+`"`)):
		t.Errorf("%s %s %s: refusal %q does not name the subject", c.id, c.what, c.subj, err)
	}
}

var shop = natsauth.Project{
	Workers: []natsauth.Worker{
		{Name: "catalog", Routes: []string{"GET /products", "GET /products/{id}"}},
		{Name: "orders", Routes: []string{"POST /orders", "GET /orders/{id}"}, Calls: []string{"catalog"}},
		{Name: "billing", Routes: []string{"GET /invoices/{id}"}, Calls: []string{}},
	},
	GatewayRoutes: []string{"POST /legacy"},
}

func TestPermissionsOnARealServer(t *testing.T) {
	b := startBus(t, shop)
	w := func(n string) string { return natsauth.WorkerID(n) }
	checks := []check{
		// The gateway publishes to routes and reads its own replies.
		{"gateway", "pub", "products.apple.GET", true},
		{"gateway", "pub", "products.HEAD", true},
		{"gateway", "pub", "legacy.POST", true},
		{"gateway", "pub", "$SRV.INFO", true},
		{"gateway", "pub", "$SRV.PING.catalog", true},
		{"gateway", "sub", "_INBOX._gateway.x.*", true},
		{"gateway", "pub", "admin.secrets.GET", false},
		{"gateway", "pub", "_INBOX.catalog.x", false},
		{"gateway", "sub", ">", false},
		{"gateway", "sub", "products.*.GET", false},
		{"gateway", "sub", "_INBOX.>", false},
		{"gateway", "sub", "$SYS.>", false},
		// It follows the workers' announcements, and makes none.
		{"gateway", "sub", "$METRO.SERVICE.UP", true},
		{"gateway", "sub", "$METRO.SERVICE.DOWN", true},
		{"gateway", "pub", "$METRO.SERVICE.UP", false},
		{"gateway", "pub", "$METRO.SERVICE.DOWN", false},
		{"gateway", "sub", "$METRO.>", false},

		// A worker serves its routes in its own queue group only.
		{w("catalog"), "qsub catalog", "products.*.GET", true},
		{w("catalog"), "qsub catalog", "products.*.HEAD", true},
		{w("catalog"), "sub", "$SRV.INFO", true},
		{w("catalog"), "sub", "$SRV.PING.catalog", true},
		{w("catalog"), "sub", "_INBOX.catalog.abc.*", true},
		{w("catalog"), "pub", "orders.POST", true}, // calls absent: every route
		{w("catalog"), "sub", "products.*.GET", false},
		{w("catalog"), "qsub orders", "products.*.GET", false},
		{w("catalog"), "qsub orders", "orders.POST", false},
		{w("catalog"), "qsub catalog", "orders.POST", false},
		{w("catalog"), "sub", ">", false},
		{w("catalog"), "qsub catalog", ">", false},
		{w("catalog"), "sub", "_INBOX.>", false},
		{w("catalog"), "sub", "_INBOX._gateway.>", false},
		{w("catalog"), "sub", "$SRV.INFO.orders", false},
		{w("catalog"), "sub", "$SYS.>", false},
		{w("catalog"), "pub", "_INBOX._gateway.x.1", false},
		{w("catalog"), "pub", "admin.GET", false},
		// It announces itself, and its Transport follows the others'
		// announcements and asks every service for its info, but asks
		// nothing else of the service protocol and cannot answer it in
		// another service's place.
		{w("catalog"), "pub", "$METRO.SERVICE.UP", true},
		{w("catalog"), "pub", "$METRO.SERVICE.DOWN", true},
		{w("catalog"), "sub", "$METRO.SERVICE.UP", true},
		{w("catalog"), "sub", "$METRO.SERVICE.DOWN", true},
		{w("catalog"), "pub", "$SRV.INFO", true},
		{w("catalog"), "pub", "$SRV.INFO.orders", false},
		{w("catalog"), "pub", "$SRV.PING", false},
		{w("catalog"), "pub", "$SRV.STATS", false},
		{w("catalog"), "pub", "$METRO.SERVICE.X", false},
		{w("catalog"), "sub", "$METRO.>", false},
		{w("catalog"), "sub", "$SRV.PING.orders", false},
		{w("catalog"), "sub", "$SRV.INFO.orders.x", false},
		// Its own branch of the stream subjects, where its probes go too
		// (stream.ProbeSubject), and no other's.
		{w("catalog"), "sub", "$METRO.STREAM.catalog.probe", true},
		{w("catalog"), "pub", "$METRO.STREAM.catalog.probe", true},
		{w("catalog"), "sub", "$METRO.STREAM.orders.probe", false},

		{w("orders"), "pub", "products.apple.GET", true}, // calls: [catalog]
		{w("orders"), "pub", "legacy.POST", false},
		{w("orders"), "pub", "orders.POST", false},
		{w("orders"), "pub", "$METRO.SERVICE.UP", true},
		{w("orders"), "sub", "$METRO.SERVICE.UP", true},
		{w("orders"), "pub", "$SRV.INFO", true},

		{w("billing"), "qsub billing", "invoices.*.GET", true},
		{w("billing"), "pub", "products.apple.GET", false}, // calls: []
		{w("billing"), "pub", "orders.POST", false},
		// With nothing to call it has no Transport to follow discovery
		// for, but still announces itself.
		{w("billing"), "pub", "$METRO.SERVICE.UP", true},
		{w("billing"), "pub", "$METRO.SERVICE.DOWN", true},
		{w("billing"), "pub", "$SRV.INFO", false},
		{w("billing"), "sub", "$METRO.SERVICE.UP", false},

		// Tap watches everything and can take nothing.
		{"tap", "sub", ">", true},
		{"tap", "sub", "_INBOX.>", true},
		{"tap", "pub", "$SRV.INFO", true},
		{"tap", "qsub catalog", "products.*.GET", false},
		{"tap", "qsub tap", ">", false},
		{"tap", "sub", "$SYS.>", false},
		{"tap", "pub", "products.apple.GET", false},
		{"tap", "pub", "_INBOX._gateway.x.1", false},
		{"tap", "sub", "$METRO.SERVICE.UP", true},
		{"tap", "pub", "$METRO.SERVICE.UP", false},
		{"tap", "qsub tap", "$METRO.SERVICE.UP", false},

		{"tools", "pub", "products.apple.GET", true},
		{"tools", "pub", "$SRV.PING", true},
		{"tools", "sub", "_INBOX._tools.x", true},
		{"tools", "sub", ">", false},
		{"tools", "sub", "_INBOX.>", false},
		{"tools", "sub", "products.*.GET", false},
		{"tools", "sub", "$SYS.>", false},
		{"tools", "pub", "_INBOX._gateway.x.1", false},
		// metro call follows discovery as a worker's Transport does.
		{"tools", "pub", "$SRV.INFO", true},
		{"tools", "sub", "$METRO.SERVICE.UP", true},
		{"tools", "sub", "$METRO.SERVICE.DOWN", true},
		{"tools", "pub", "$METRO.SERVICE.UP", false},
		{"tools", "pub", "$METRO.SERVICE.DOWN", false},
	}
	runChecks(t, b, checks)
}

// runChecks runs each check on a connection of its identity.
func runChecks(t *testing.T, b *natstest.Bus, checks []check) {
	t.Helper()
	conns := map[string]*nats.Conn{}
	for _, c := range checks {
		// One connection per check that is refused, so a refusal cannot
		// hide behind an earlier one; allowed ones share.
		nc := conns[c.id]
		if nc == nil || !c.allow {
			nc = b.Connect(t, c.id)
			if c.allow {
				conns[c.id] = nc
			}
		}
		c.run(t, nc)
	}
}

// TestUndeclaredRoutes: a worker without declared routes may serve any
// route, but only in its own queue group, and nobody gains the reserved
// subjects through the broad permissions that follow.
func TestUndeclaredRoutes(t *testing.T) {
	b := startBus(t, natsauth.Project{Workers: []natsauth.Worker{
		{Name: "billing", Calls: []string{}},
		{Name: "catalog", Routes: []string{"GET /products"}},
	}})
	w := func(n string) string { return natsauth.WorkerID(n) }
	runChecks(t, b, []check{
		{w("billing"), "qsub billing", "invoices.*.GET", true},
		{w("billing"), "sub", "_INBOX.billing.x.*", true},
		{w("billing"), "sub", "invoices.*.GET", false},
		{w("billing"), "sub", ">", false},
		{w("billing"), "qsub catalog", "products.*.GET", false},
		{w("billing"), "qsub billing", "_INBOX.>", false},
		{w("billing"), "qsub billing", "$SRV.INFO", false},
		{w("billing"), "sub", "$SYS.>", false},
		{w("billing"), "qsub billing", "$SYS.>", false},
		{w("billing"), "pub", "products.apple.GET", false}, // calls: []

		{"gateway", "pub", "invoices.1.GET", true},
		{"gateway", "pub", "_INBOX.billing.x", false},
		{"gateway", "pub", "$SYS.REQ.SERVER.PING", false},
		{"gateway", "sub", "_INBOX.>", false},
		{w("catalog"), "pub", "invoices.1.GET", true},
		{w("catalog"), "pub", "_INBOX._gateway.x.1", false},
		{w("catalog"), "pub", "$SRV.INFO", true},
		{w("catalog"), "pub", "$SRV.PING", false},
		{w("catalog"), "pub", "$SRV.STATS", false},
		{w("catalog"), "pub", "$SRV.INFO.billing", false},
		{w("catalog"), "pub", "$SRV.PING.billing.x", false},
		{w("catalog"), "pub", "$METRO.SERVICE.UP", true},
		{w("catalog"), "sub", "$METRO.SERVICE.UP", true},
		{w("billing"), "pub", "$METRO.SERVICE.UP", true},
		{w("billing"), "pub", "$METRO.SERVICE.DOWN", true},
		{w("billing"), "pub", "$SRV.INFO", false},
		{w("billing"), "sub", "$METRO.SERVICE.UP", false},
		{"tools", "pub", "_INBOX._gateway.x.1", false},
	})
}

// TestPrefixedProject: with a prefix every permission stays under it, so
// tap too is refused the whole bus.
func TestPrefixedProject(t *testing.T) {
	b := startBus(t, natsauth.Project{Prefix: "api", Workers: []natsauth.Worker{{Name: "catalog"}}})
	runChecks(t, b, []check{
		{"tap", "sub", "api.>", true},
		{"tap", "sub", "_INBOX.>", true},
		{"tap", "sub", ">", false},
		{"tap", "sub", "$METRO.SERVICE.UP", true},
		{"tap", "sub", "$METRO.SERVICE.DOWN", true},
		{"gateway", "pub", "api.products.GET", true},
		{"gateway", "pub", "products.GET", false},
		{natsauth.WorkerID("catalog"), "qsub catalog", "api.products.GET", true},
		{natsauth.WorkerID("catalog"), "qsub catalog", "products.GET", false},
		{natsauth.WorkerID("catalog"), "qsub catalog", ">", false},
	})
}

func TestAnonymousIsRefused(t *testing.T) {
	b := startBus(t, shop)
	_, err := nats.Connect(b.ClientURL())
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("anonymous connect: %v, want an authorization violation", err)
	}
}

// TestRequestReplyWithTap runs a whole exchange as the roles do it: the
// gateway asks, the worker answers through allow_responses, tap sees both.
func TestRequestReplyWithTap(t *testing.T) {
	b := startBus(t, shop)
	tap := b.Connect(t, "tap")
	seen, err := tap.SubscribeSync(">")
	if err != nil {
		t.Fatal(err)
	}
	if err := tap.Flush(); err != nil {
		t.Fatal(err)
	}
	worker := b.Connect(t, natsauth.WorkerID("catalog"))
	if _, err := worker.QueueSubscribe("products.*.GET", "catalog", func(m *nats.Msg) {
		_ = m.Respond([]byte("apple"))
		_ = m.Respond([]byte("a forged second answer"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := worker.Flush(); err != nil {
		t.Fatal(err)
	}
	gw := b.Connect(t, "gateway")
	rep, err := gw.Request("products.apple.GET", nil, 5*time.Second)
	if err != nil {
		t.Fatalf("gateway request: %v (worker: %v)", err, worker.LastError())
	}
	if string(rep.Data) != "apple" || !strings.HasPrefix(rep.Subject, "_INBOX._gateway.") {
		t.Fatalf("reply %q on %s", rep.Data, rep.Subject)
	}
	got := map[string]bool{}
	for len(got) < 2 {
		m, err := seen.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("tap saw %v, then: %v", got, err)
		}
		got[m.Subject] = true
	}
	if !got["products.apple.GET"] || !got[rep.Subject] {
		t.Fatalf("tap saw %v", got)
	}
	// A second answer to the same request is refused: one reply each.
	if err := worker.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := worker.LastError(); !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), rep.Subject) {
		t.Fatalf("second reply: %v, want a permissions violation on %s", err, rep.Subject)
	}
}

// TestShopExample: the example's metro.yaml declares every route and
// call, so each worker's permissions are exactly its own.
func TestShopExample(t *testing.T) {
	cfg, err := config.Load("../../examples/shop/metro.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := natsauth.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	users, err := natsauth.Users(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.ID == natsauth.WorkerID("catalog") && !slices.Equal(u.Publish, []string{"$METRO.SERVICE.UP", "$METRO.SERVICE.DOWN", "$METRO.STREAM.>"}) {
			t.Errorf("catalog (calls: []) may publish %v, want its announcements and stream pulls only", u.Publish)
		}
		if u.ID == natsauth.WorkerID("orders") && !slices.Equal(u.Publish, []string{"products.GET", "products.HEAD", "products.*.GET", "products.*.HEAD", "$METRO.SERVICE.UP", "$METRO.SERVICE.DOWN", "$SRV.INFO", "$METRO.STREAM.>"}) {
			t.Errorf("orders (calls: [catalog]) may publish %v", u.Publish)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"workers:\n  a:\n    run: x\n    calls: [b]\n", `metro.yaml:4: workers.a.calls: "b" is not a worker`},
		{"workers:\n  a:\n    run: x\n    routes: [\"GET products\"]\n", "metro.yaml:4: workers.a.routes:"},
	}
	for _, tt := range tests {
		cfg, err := config.Parse("metro.yaml", t.TempDir(), []byte(tt.yaml))
		if err != nil {
			t.Fatal(err)
		}
		_, err = natsauth.FromConfig(cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.yaml, err, tt.want)
		}
	}
}
