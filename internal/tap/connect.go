package tap

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/devstate"
	"github.com/metropolis-dev/metro/internal/natsauth"
	"github.com/metropolis-dev/metro/internal/natsconn"
)

// Options are the settings of one metro tap run.
type Options struct {
	Server string // --server; else EnvURL; else the running metro dev
	EnvURL string // NATS_URL
	Dir    string // where to look for .metro/dev.json
	Creds  string // --creds: a NATS credentials file
	NKey   string // --nkey: a file holding an nkey seed

	Prefix    string
	PrefixSet bool // Prefix came from --prefix or METRO_PREFIX, not the default

	Subjects []string      // NATS subjects or route patterns; none: everything
	Buffer   int           // exchanges kept for display
	JSON     bool          // NDJSON even on a terminal
	Count    int           // exit after this many exchanges; 0: no limit
	Timeout  time.Duration // exit after this long; 0: no limit

	Record string // --record: write every finished exchange to this file
	// RecordMaxStream is the largest streamed body recorded whole
	// (--record-max-stream; DefaultRecordMaxStream when 0).
	RecordMaxStream int
	Redact          []string // --redact: more headers whose values are not recorded
}

// ErrNoServer is returned when no NATS server is named and no metro dev runs.
var ErrNoServer = errors.New("no NATS server to tap: pass --server URL, set NATS_URL, or start metro dev in this project")

// Target is the server tap connects to and the prefix subjects are under.
type Target struct {
	URL    string
	Prefix string
	From   string // where URL came from: "--server", "NATS_URL" or the state file's path
	// devNKey is the seed file metro dev made for tap, when URL is its.
	devNKey string
}

// Display is the server URL as shown on screen and in logs: passwords and
// tokens in it are masked.
func (t Target) Display() string { return natsconn.Redact(t.URL) }

// Resolve finds the server: --server, then NATS_URL, then the state file
// of a metro dev running in Dir or above, which also supplies the prefix
// unless one was given.
func Resolve(o Options) (Target, error) {
	t := Target{Prefix: o.Prefix}
	nt, err := natsconn.Resolve(o.Server, o.EnvURL, o.Dir)
	t.devNKey = nt.DevNKeys[string(natsauth.RoleTap)]
	switch {
	case errors.Is(err, natsconn.ErrNoServer):
		return t, ErrNoServer
	case err != nil:
		return t, fmt.Errorf("finding the running metro dev: %w", err)
	case !nt.FromDev:
		t.URL, t.From = nt.URL, "NATS_URL"
		if o.Server != "" {
			t.From = "--server"
		}
	case nt.URL == "":
		return t, fmt.Errorf("finding the running metro dev: %s names no NATS URL", devstate.RelPath)
	default:
		t.URL, t.From = nt.URL, devstate.RelPath
		if !o.PrefixSet {
			t.Prefix = nt.Prefix
		}
	}
	return t, nil
}

// Connect connects to the server t names, with o's credentials, else those
// of the environment, else the read-only identity metro dev made for tap.
func Connect(o Options, t Target) (*nats.Conn, error) {
	dev := natsconn.Target{FromDev: t.devNKey != "", DevNKeys: map[string]string{string(natsauth.RoleTap): t.devNKey}}
	auth, err := dev.Auth(natsauth.RoleTap, natsconn.Auth{Creds: o.Creds, NKey: o.NKey}, os.Getenv).Options()
	if err != nil {
		return nil, err
	}
	opts := append([]nats.Option{nats.Name("metro tap"), nats.MaxReconnects(-1), natsconn.Inbox(natsauth.RoleTap, "")}, auth...)
	nc, err := nats.Connect(t.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s (from %s): %w", t.Display(), t.From, err)
	}
	return nc, nil
}
