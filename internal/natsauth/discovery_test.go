package natsauth_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/natsauth"
)

// TestAnnouncementsOnALockedBus: a worker started with its identity
// announces itself when it starts and when it stops, a gateway following
// discovery learns of both from the announcements alone (its poll comes
// once an hour), and a calling worker's connection, as its Transport uses
// it, learns who owns a route.
func TestAnnouncementsOnALockedBus(t *testing.T) {
	b := startBus(t, shop)
	gw := b.Connect(t, "gateway")
	ups, err := gw.SubscribeSync(discovery.UpSubject)
	if err != nil {
		t.Fatal(err)
	}
	downs, err := gw.SubscribeSync(discovery.DownSubject)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := gw.LastError(); err != nil {
		t.Fatalf("gateway subscribing to the announcements: %v", err)
	}
	reg := discovery.NewRegistry(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	followed := make(chan error, 1)
	go func() { followed <- discovery.Follow(ctx, gw, "", time.Hour, reg) }()
	defer func() {
		cancel()
		if err := <-followed; err != nil {
			t.Errorf("Follow: %v", err)
		}
	}()

	// orders may call catalog: its connection follows discovery as its
	// Transport's view does. This view settles before catalog starts and
	// polls every 30s, so it can learn of catalog from the announcement
	// only; the one made later learns from its own poll.
	orders := b.Connect(t, natsauth.WorkerID("orders"))
	early := followAs(t, orders)

	t.Setenv("NATS_NKEY", b.Seed(natsauth.WorkerID("catalog")))
	quiet := metro.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	w := metro.NewWorker("catalog", metro.WithNATSURL(b.ClientURL()), quiet)
	w.HandleFunc("GET /products", func(rw http.ResponseWriter, _ *http.Request) { io.WriteString(rw, "apple") })
	wctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- w.Run(wctx) }()
	defer func() {
		stop()
		<-ran
	}()
	select {
	case <-w.Ready():
	case err := <-ran:
		t.Fatalf("Run ended: %v", err)
	}

	m, err := ups.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("the gateway got no announcement: %v", err)
	}
	var info micro.Info
	if err := json.Unmarshal(m.Data, &info); err != nil || info.Name != "catalog" {
		t.Fatalf("announced %s (%v)", m.Data, err)
	}
	waitOwner(t, reg, "products.GET", "catalog")
	waitOwner(t, early, "products.GET", "catalog")
	waitOwner(t, followAs(t, orders), "products.GET", "catalog")
	if err := orders.LastError(); err != nil {
		t.Fatalf("orders following discovery: %v", err)
	}

	stop()
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	ran <- nil
	if _, err := downs.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("the gateway got no goodbye: %v", err)
	}
	waitOwner(t, reg, "products.GET", "")
}

// followAs starts a view of the services on nc and waits until it settled.
func followAs(t *testing.T, nc *nats.Conn) *discovery.Registry {
	t.Helper()
	view := discovery.NewView(nc, "")
	t.Cleanup(view.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := view.Registry(ctx)
	if reg == nil {
		t.Fatal("the view never settled")
	}
	return reg
}

// waitOwner waits until reg names owner ("": none) for a request on subj.
func waitOwner(t *testing.T, reg *discovery.Registry, subj, owner string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		k, _ := reg.Match(subj)
		if k.Owner == owner {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: owner %q, want %q", subj, k.Owner, owner)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
