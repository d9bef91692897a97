// Package natsconn is how metro connects to NATS: how commands find a
// server (an explicit URL, else $NATS_URL, else the running metro dev), the
// credential and TLS options that nats.go supports, and the coalescing
// socket that the gateway and workers send their traffic through.
package natsconn

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/devstate"
	"github.com/metropolis-dev/metro/internal/natsauth"
)

// Auth holds the credential and TLS files a command was given.
type Auth struct {
	Creds   string // a .creds file (JWT + seed)
	NKey    string // an nkey seed file
	TLSCert string // client certificate, with TLSKey
	TLSKey  string
	TLSCA   string // CA bundle to verify the server
}

// Options returns the nats.go options for a.
func (a Auth) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if a.Creds != "" {
		if _, err := os.Stat(a.Creds); err != nil {
			return nil, fmt.Errorf("credentials file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(a.Creds))
	}
	if a.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(a.NKey)
		if err != nil {
			return nil, fmt.Errorf("nkey seed file %s: %w", a.NKey, err)
		}
		opts = append(opts, o)
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if a.TLSCert != "" {
		opts = append(opts, nats.ClientCert(a.TLSCert, a.TLSKey))
	}
	if a.TLSCA != "" {
		opts = append(opts, nats.RootCAs(a.TLSCA))
	}
	return opts, nil
}

// ErrNoServer says where a command looked for NATS and found nothing.
var ErrNoServer = errors.New("no NATS server: pass --server URL, set NATS_URL, or start `metro dev` in this project")

// Target is the server a command talks to.
type Target struct {
	URL string
	// Prefix is the running metro dev's subject prefix when URL came from
	// its state file (FromDev), else "".
	Prefix  string
	FromDev bool
	// DevNKeys are the seed files metro dev made for the tools, by role
	// ("tap", "tools"), when URL came from its state file.
	DevNKeys map[string]string
}

// Auth is the credentials for role: a's, else those of the environment,
// else the seed file metro dev made for role.
func (t Target) Auth(role natsauth.Role, a Auth, getenv func(string) string) Auth {
	a = a.Or(AuthFromEnv(getenv))
	if a.Creds == "" && a.NKey == "" && t.FromDev {
		a.NKey = t.DevNKeys[string(role)]
	}
	return a
}

// Resolve returns the server to use: flag, else envURL ($NATS_URL), else
// the state file of a metro dev running in dir or above.
func Resolve(flag, envURL, dir string) (Target, error) {
	switch {
	case flag != "":
		return Target{URL: flag}, nil
	case envURL != "":
		return Target{URL: envURL}, nil
	}
	st, err := devstate.Find(dir)
	if errors.Is(err, devstate.ErrNotRunning) {
		return Target{}, ErrNoServer
	}
	if err != nil {
		return Target{}, err
	}
	return Target{URL: st.NATSURL, Prefix: st.Prefix, FromDev: true, DevNKeys: st.NKeys}, nil
}

// Connect resolves and connects, failing at once (not retrying) when the
// server is not there: a command a person runs should say so plainly.
func Connect(flag, dir, name string, a Auth) (*nats.Conn, string, error) {
	t, err := Resolve(flag, os.Getenv("NATS_URL"), dir)
	if err != nil {
		return nil, "", err
	}
	url, prefix := t.URL, t.Prefix
	opts, err := t.Auth(natsauth.RoleTools, a, os.Getenv).Options()
	if err != nil {
		return nil, "", err
	}
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name(name), Inbox(natsauth.RoleTools, "")}, opts...)...)
	if err != nil {
		return nil, "", fmt.Errorf("connecting to NATS at %s: %w", Redact(url), err)
	}
	return nc, prefix, nil
}

// Redact is a server URL (or a comma-separated list of them) as shown on
// screen, in logs and in errors: passwords and tokens in it are masked.
func Redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			if _, hasPass := u.User.Password(); !hasPass {
				u.User = url.User("xxxxx") // a bare token
			}
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

// Poll checks cond every few milliseconds until it holds (true), ctx ends
// or limit passes (false): how a move away from a server in lame duck
// mode waits for the new connection, or for requests in flight to end.
func Poll(ctx context.Context, limit time.Duration, cond func() bool) bool {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	end := time.After(limit)
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-end:
			return false
		case <-t.C:
		}
	}
	return true
}
