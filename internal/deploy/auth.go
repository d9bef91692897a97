package deploy

import (
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/natsauth"
)

// KeysFile is where metro deploy keeps the nkey seeds of a project's
// identities, relative to its directory: made once, so the emitted
// Secrets and the server's authorization are the same run after run.
// It sits in .metro/, which a project's .gitignore leaves out.
const KeysFile = ".metro/deploy-nkeys.json"

// KeysPath is KeysFile for the project of c.
func KeysPath(c *config.Config) string { return filepath.Join(c.Dir, KeysFile) }

// credsMount is where a pod finds its own seed; nkeyFile is the key of
// the Secret that holds it, nkeyPubFile its public key.
const (
	credsMount  = "/etc/metro-nats"
	nkeyFile    = "nkey"
	nkeyPubFile = "nkey.pub"
)

// authData is the locked bus in Kubernetes terms.
type authData struct {
	// Conf is the authorization block of nats-server's configuration.
	Conf string
	// UserSecrets: the Secrets are the user's, referenced by name only.
	UserSecrets bool
	Secrets     []secretData
	// PubEnv are the server's variables holding public keys, from the
	// user's Secrets (UserSecrets only).
	PubEnv []secretRef
	// Permissions names the ConfigMap that shows the operator of an
	// external NATS what to grant ("" with metro's own NATS).
	Permissions   string
	NetworkPolicy string
	TLS           *tlsData
	MountPath     string
	NKeyFile      string
	GatewaySecret string
}

// tlsData is the cert-manager Certificate of the NATS servers: its
// Secret is mounted whole into the servers, and only its ca.crt into
// clients, which verify the servers with it.
type tlsData struct {
	Certificate, Secret string
	Issuer, IssuerKind  string
	DNSNames            []string
	ServerDir           string // where the servers find tls.crt, tls.key, ca.crt
	ClientCA            string // the CA file in client pods (NATS_CA)
}

// The mount points of the NATS certificate.
const (
	tlsServerDir = "/etc/nats-tls"
	tlsClientDir = "/etc/metro-nats-ca"
)

// newTLS is the NATS certificate of c, nil when deploy.nats.tls is unset.
func newTLS(c *config.Config, d *data, fail func(string, string, ...any)) *tlsData {
	t := c.Deploy.NATS.TLS
	if t == nil {
		return nil
	}
	if !d.NATS.Enabled {
		fail("deploy.nats.tls", "applies to the NATS that metro deploys; with nats.url, give the gateway and workers NATS_CA yourself")
		return nil
	}
	kind := t.Kind
	switch kind {
	case "":
		kind = "Issuer"
	case "Issuer", "ClusterIssuer":
	default:
		fail("deploy.nats.tls.kind", "%q is not Issuer or ClusterIssuer", t.Kind)
	}
	if t.Issuer == "" {
		fail("deploy.nats.tls.issuer", "is required: the cert-manager issuer of the NATS certificate")
	}
	n := d.NATS
	x := &tlsData{
		Certificate: n.Name + "-tls", Secret: n.Name + "-tls",
		Issuer: t.Issuer, IssuerKind: kind,
		ServerDir: tlsServerDir, ClientCA: tlsClientDir + "/ca.crt",
		// Clients dial the Service, servers each other by pod name.
		DNSNames: []string{n.Service, "*." + n.Headless},
	}
	if d.Namespace != "" {
		x.DNSNames = append(x.DNSNames, n.Service+"."+d.Namespace+".svc", "*."+n.Headless+"."+d.Namespace+".svc")
	}
	return x
}

// secretData is one identity's Secret; Seed and Pub are base64 for data:.
type secretData struct {
	Name, ID, Seed, Pub string
	Owner               string // the app.kubernetes.io/name of the identity's pods, or its role
}

// secretRef is one environment variable read from a Secret's key.
type secretRef struct {
	Env, Secret, Key string
}

// secretName is the Secret of identity id.
func secretName(project, id string) string { return project + "-nats-" + id }

// pubVar is the server's variable for id's public key with UserSecrets.
func pubVar(id string) string {
	return "NKEY_" + strings.ToUpper(strings.ReplaceAll(id, "-", "_"))
}

// newAuth derives every identity's permissions from c and places them:
// the server's authorization block, a Secret per identity, which pod
// mounts which one.
func newAuth(c *config.Config, d *data, opts Options) (authData, error) {
	p, err := natsauth.FromConfig(c)
	if err != nil {
		return authData{}, err
	}
	users, err := natsauth.Users(p)
	if err != nil {
		return authData{}, err
	}
	a := authData{
		UserSecrets:   opts.UserSecrets,
		MountPath:     credsMount,
		NKeyFile:      nkeyFile,
		GatewaySecret: secretName(c.Name, string(natsauth.RoleGateway)),
		NetworkPolicy: c.Name + "-nats",
	}
	if !d.NATS.Enabled {
		a.Permissions = c.Name + "-nats-permissions"
	}
	keys := opts.Keys
	if keys == nil {
		keys = natsauth.Keys{}
	}
	pub := keys.Public
	if opts.UserSecrets {
		pub = func(id string) (string, error) { return "$" + pubVar(id), nil }
		for _, u := range users {
			a.PubEnv = append(a.PubEnv, secretRef{Env: pubVar(u.ID), Secret: secretName(c.Name, u.ID), Key: nkeyPubFile})
		}
	} else {
		if _, err := keys.Fill(users); err != nil {
			return authData{}, err
		}
		for _, u := range users {
			pk, err := keys.Public(u.ID)
			if err != nil {
				return authData{}, err
			}
			owner := u.Name
			if u.Role != natsauth.RoleWorker {
				owner = string(u.Role)
			}
			a.Secrets = append(a.Secrets, secretData{
				Name:  secretName(c.Name, u.ID),
				ID:    u.ID,
				Owner: owner,
				Seed:  base64.StdEncoding.EncodeToString([]byte(keys[u.ID])),
				Pub:   base64.StdEncoding.EncodeToString([]byte(pk)),
			})
		}
	}
	if a.Conf, err = natsauth.Conf(users, pub); err != nil {
		return authData{}, fmt.Errorf("rendering NATS permissions: %w", err)
	}
	for _, w := range d.Workers {
		w.Secret = secretName(c.Name, natsauth.WorkerID(w.Name))
	}
	return a, nil
}
