package natsconn

import (
	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/natsauth"
)

// Environment variables that carry NATS credentials and TLS files, spelled
// as the nats CLI spells them. metro dev and metro deploy set them for the
// gateway and every worker.
const (
	EnvCreds = "NATS_CREDS" // a .creds file (JWT + seed)
	EnvNKey  = "NATS_NKEY"  // an nkey seed file
	EnvCert  = "NATS_CERT"  // client certificate, with EnvKey
	EnvKey   = "NATS_KEY"
	EnvCA    = "NATS_CA" // CA bundle to verify the server
)

// AuthFromEnv reads the credential variables with getenv (os.Getenv).
func AuthFromEnv(getenv func(string) string) Auth {
	return Auth{
		Creds:   getenv(EnvCreds),
		NKey:    getenv(EnvNKey),
		TLSCert: getenv(EnvCert),
		TLSKey:  getenv(EnvKey),
		TLSCA:   getenv(EnvCA),
	}
}

// Or is a, with the credential (creds or nkey) and the TLS files taken from
// b where a names none: flags first, then the environment.
func (a Auth) Or(b Auth) Auth {
	if a.Creds == "" && a.NKey == "" {
		a.Creds, a.NKey = b.Creds, b.NKey
	}
	if a.TLSCert == "" && a.TLSKey == "" {
		a.TLSCert, a.TLSKey = b.TLSCert, b.TLSKey
	}
	if a.TLSCA == "" {
		a.TLSCA = b.TLSCA
	}
	return a
}

// Inbox makes a connection of role take its reply subjects where that
// role's permissions let it read them (natsauth.InboxPrefix). Without
// permissions on the server it changes nothing that matters.
func Inbox(role natsauth.Role, worker string) nats.Option {
	return nats.CustomInboxPrefix(natsauth.InboxPrefix(role, worker))
}
