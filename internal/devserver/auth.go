package devserver

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/natsauth"
	"github.com/metropolis-dev/metro/internal/natsconn"
)

// authDir holds a run's credentials and the server's authorization, under
// the project directory.
const authDir = ".metro/auth"

// busAuth is the locked bus of one metro dev run: fresh nkeys for every
// identity, so a key copied from an earlier run admits nothing.
type busAuth struct {
	dir  string
	conf string // the nats-server config file with the authorization block
	// open names the workers without declared routes, whose permissions
	// cover every route.
	open []string
}

// lockBus makes this run's identities from cfg, writes their seeds
// (0600) and the server's authorization under .metro/auth.
func lockBus(cfg *config.Config) (*busAuth, error) {
	p, err := natsauth.FromConfig(cfg)
	if err != nil {
		return nil, err
	}
	users, err := natsauth.Users(p)
	if err != nil {
		return nil, err
	}
	keys := natsauth.Keys{}
	if _, err := keys.Fill(users); err != nil {
		return nil, err
	}
	conf, err := natsauth.Conf(users, keys.Public)
	if err != nil {
		return nil, err
	}
	a := &busAuth{dir: filepath.Join(cfg.Dir, authDir)}
	for _, w := range p.Workers {
		if len(w.Routes) == 0 {
			a.open = append(a.open, w.Name)
		}
	}
	// Seeds of workers removed from metro.yaml since the last run go too.
	if err := os.RemoveAll(a.dir); err != nil {
		return nil, fmt.Errorf("clearing %s: %w", authDir, err)
	}
	if err := keys.WriteSeeds(a.dir); err != nil {
		return nil, err
	}
	a.conf = filepath.Join(a.dir, "nats.conf")
	if err := os.WriteFile(a.conf, []byte("# metro dev: who may do what on the bus, made from metro.yaml for this run\n"+conf), 0o600); err != nil {
		return nil, fmt.Errorf("writing %s: %w", a.conf, err)
	}
	return a, nil
}

func (a *busAuth) seed(id string) string { return natsauth.SeedFile(a.dir, id) }

// workerEnv is what a worker's process needs to connect as itself.
func (a *busAuth) workerEnv(name string) []string {
	return []string{natsconn.EnvNKey + "=" + a.seed(natsauth.WorkerID(name))}
}

// gatewayOptions connect metro dev itself, and the gateway it runs on
// the same connection, as the gateway.
func (a *busAuth) gatewayOptions() ([]nats.Option, error) {
	nk, err := nats.NkeyOptionFromSeed(a.seed(string(natsauth.RoleGateway)))
	if err != nil {
		return nil, fmt.Errorf("NATS credentials of the gateway: %w", err)
	}
	return []nats.Option{nk, natsconn.Inbox(natsauth.RoleGateway, "")}, nil
}

// toolNKeys are the seed files that tap, call and routes find through
// .metro/dev.json.
func (a *busAuth) toolNKeys() map[string]string {
	return map[string]string{
		string(natsauth.RoleTap):   a.seed(string(natsauth.RoleTap)),
		string(natsauth.RoleTools): a.seed(string(natsauth.RoleTools)),
	}
}
