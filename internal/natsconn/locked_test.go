package natsconn_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natsauth"
	"github.com/metropolis-dev/metro/internal/natsconn"
	"github.com/metropolis-dev/metro/internal/natstest"
)

// TestDialReportsRefusedOperations: a publish the server's permissions
// refuse is logged as an error naming the subject, not lost in silence.
func TestDialReportsRefusedOperations(t *testing.T) {
	b := natstest.Locked(t, natsauth.Project{Workers: []natsauth.Worker{{Name: "catalog", Routes: []string{"GET /products"}}}})
	var logs metrotest.LockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	nk, err := nats.NkeyOptionFromSeed(b.Seed(string(natsauth.RoleGateway)))
	if err != nil {
		t.Fatal(err)
	}
	nc, _, err := natsconn.Dial(b.ClientURL(), log, nk, natsconn.Inbox(natsauth.RoleGateway, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("admin.GET", nil); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	metrotest.WaitFor(t, "the refusal in the log", 20*time.Second, func() bool {
		s := logs.String()
		return strings.Contains(s, "level=ERROR") && strings.Contains(s, "not permitted") && strings.Contains(s, `Publish to \"admin.GET\"`)
	})
}

// TestAuthFromEnvironment: flags win over the environment, field by field.
func TestAuthFromEnvironment(t *testing.T) {
	env := map[string]string{"NATS_NKEY": "/env/seed", "NATS_CA": "/env/ca.pem", "NATS_CERT": "/env/c", "NATS_KEY": "/env/k"}
	got := natsconn.Auth{Creds: "/flag/creds"}.Or(natsconn.AuthFromEnv(func(k string) string { return env[k] }))
	want := natsconn.Auth{Creds: "/flag/creds", TLSCert: "/env/c", TLSKey: "/env/k", TLSCA: "/env/ca.pem"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := (natsconn.Auth{}).Or(natsconn.AuthFromEnv(func(k string) string { return env[k] })); got.NKey != "/env/seed" {
		t.Errorf("the environment's nkey is not used: %+v", got)
	}
}
