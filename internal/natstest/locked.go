package natstest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/natsauth"
)

// Bus is a server running the permissions natsauth derives for a
// project, as metro dev runs them, and the seed files of its identities.
type Bus struct {
	*server.Server
	Users map[string]natsauth.User // by ID
	seeds string
}

// Locked starts a server with p's permissions, read from the config file
// natsauth renders as nats-server reads it.
func Locked(t testing.TB, p natsauth.Project) *Bus {
	t.Helper()
	users, err := natsauth.Users(p)
	if err != nil {
		t.Fatal(err)
	}
	keys := natsauth.Keys{}
	if _, err := keys.Fill(users); err != nil {
		t.Fatal(err)
	}
	conf, err := natsauth.Conf(users, keys.Public)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("natstest: nats-server rejects the generated config: %v\n%s", err, conf)
	}
	b := &Bus{Server: RunWith(t, opts), Users: map[string]natsauth.User{}, seeds: filepath.Join(dir, "seeds")}
	if err := keys.WriteSeeds(b.seeds); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		b.Users[u.ID] = u
	}
	return b
}

// Seed is the seed file of identity id, for NATS_NKEY.
func (b *Bus) Seed(id string) string { return natsauth.SeedFile(b.seeds, id) }

// Connect connects as identity id, with its inbox prefix, closed in
// t.Cleanup. Refusals the test provokes are not printed.
func (b *Bus) Connect(t testing.TB, id string) *nats.Conn {
	t.Helper()
	u, ok := b.Users[id]
	if !ok {
		t.Fatalf("natstest: no identity %s", id)
	}
	nk, err := nats.NkeyOptionFromSeed(b.Seed(id))
	if err != nil {
		t.Fatal(err)
	}
	return Connect(t, b.Server, nk, nats.CustomInboxPrefix(u.InboxPrefix), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
}
