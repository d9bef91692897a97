package devserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/call"
	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/devstate"
	"github.com/metropolis-dev/metro/internal/devtoken"
	"github.com/metropolis-dev/metro/internal/natsauth"
	"github.com/metropolis-dev/metro/internal/natsconn"
	"github.com/metropolis-dev/metro/internal/tap"
)

// toolsAuth connects as metro call and metro routes do on a running
// metro dev: with the tools identity named in its state file.
func toolsAuth(t *testing.T, st devstate.State) []nats.Option {
	t.Helper()
	nk, err := nats.NkeyOptionFromSeed(st.NKeys[string(natsauth.RoleTools)])
	if err != nil {
		t.Fatal(err)
	}
	return []nats.Option{nk, natsconn.Inbox(natsauth.RoleTools, "")}
}

// testLockedBus checks a running metro dev of examples/shop: its server
// refuses anonymous clients, the credentials it made are the owner's
// alone, and tap, call and routes find theirs through .metro/dev.json.
func testLockedBus(t *testing.T, dir string, st devstate.State) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := nats.Connect(st.NATSURL); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("anonymous connection: %v, want an authorization violation", err)
	}
	for _, role := range []natsauth.Role{natsauth.RoleTap, natsauth.RoleTools} {
		fi, err := os.Stat(st.NKeys[string(role)])
		if err != nil {
			t.Fatalf("%s seed: %v", role, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s seed has mode %v, want 0600", role, fi.Mode().Perm())
		}
	}

	// orders calls the catalog: a publish its calls allow, the reply on
	// its own inbox.
	token := shopToken(t, dir)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.GatewayURL+"/orders", strings.NewReader(`{"items":[{"product":"apple","quantity":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("POST /orders: %d, want 201 (orders calls the catalog)", resp.StatusCode)
	}

	// routes
	var out bytes.Buffer
	if err := Routes(ctx, RoutesOptions{Dir: dir, Out: &out, JSON: true, Getenv: func(string) string { return "" }}); err != nil {
		t.Fatalf("routes: %v", err)
	}
	if !strings.Contains(out.String(), `"/products/{id}"`) {
		t.Errorf("routes printed %s", out.String())
	}

	// tap, as the read-only identity, watching a call made as the tools
	to := tap.Options{Dir: dir}
	target, err := tap.Resolve(to)
	if err != nil {
		t.Fatal(err)
	}
	tnc, err := tap.Connect(to, target)
	if err != nil {
		t.Fatalf("tap: %v", err)
	}
	defer tnc.Close()
	in, err := tap.Subscribe(tnc, target.Prefix, []string{"GET /products/{id}"})
	if err != nil {
		t.Fatalf("tap: %v", err)
	}
	seen := make(chan tap.Exchange, 16)
	tctx, tstop := context.WithCancel(ctx)
	tdone := make(chan error, 1)
	go func() {
		tdone <- in.Run(tctx, func(x tap.Exchange) {
			if x.Status != 0 {
				seen <- x
			}
		}, nil)
	}()
	defer func() { tstop(); <-tdone }()

	nc, prefix, err := natsconn.Connect("", dir, "metro call", natsconn.Auth{})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	defer nc.Close()
	var body bytes.Buffer
	status, err := call.Do(ctx, nc, call.Options{Method: "GET", Path: "/products/apple", Prefix: prefix, Timeout: 10 * time.Second}, &body)
	if err != nil || status != http.StatusOK || !strings.Contains(body.String(), "Apple") {
		t.Fatalf("call: %d %q %v", status, body.String(), err)
	}
	select {
	case x := <-seen:
		if x.Subject != "products.apple.GET" || x.Status != http.StatusOK {
			t.Errorf("tap saw %s with status %d", x.Subject, x.Status)
		}
	case <-ctx.Done():
		t.Fatal("tap saw no exchange")
	}
}

// TestDevWorkerOutsideItsRoutes: a worker that registers a route its
// metro.yaml entry does not declare is refused by metro dev's server, and
// says which subject, instead of serving without it.
func TestDevWorkerOutsideItsRoutes(t *testing.T) {
	t.Parallel()
	dir := copyProject(t, e2eProject)
	yml := filepath.Join(dir, "metro.yaml")
	b, err := os.ReadFile(yml)
	if err != nil {
		t.Fatal(err)
	}
	narrowed := strings.Replace(string(b), `routes: ["GET /products", "GET /products/{id}"]`, `routes: ["GET /products"]`, 1)
	if narrowed == string(b) {
		t.Fatal("examples/shop/metro.yaml no longer declares the catalog's routes")
	}
	if err := os.WriteFile(yml, []byte(narrowed), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDev(t, dir, "DEVSERVER_TEST_GRACE=5s", "DEVSERVER_TEST_NATS_PORT=0",
		"METRO_LISTEN=127.0.0.1:0", "METRO_ADMIN=127.0.0.1:0", "DEVSERVER_TEST_READY=5s")
	// GET routes subscribe HEAD too; the last refusal names that one.
	d.waitOutput(t, `worker catalog: the NATS server refused the route HEAD /products/{id} (products.*.HEAD)`, 3*time.Minute)
	if code := d.interrupt(t, 60*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

// shopToken is a bearer token for the shop's POST /orders (gateway.auth),
// minted as metro token does from the example's development key.
func shopToken(t *testing.T, dir string) string {
	t.Helper()
	cfg, err := config.Load(filepath.Join(dir, "metro.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tok strings.Builder
	if err := devtoken.Run(devtoken.Options{Config: cfg, Sub: "alice", Out: &tok, ErrOut: io.Discard}); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(tok.String())
}
