package natsconn_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/natsconn"
	"github.com/metropolis-dev/metro/internal/natstest"
)

// TestAuthAgainstRealServers connects with each kind of credential that
// metro's commands accept to a server that demands it, through the
// coalescing socket the gateway and workers use, and sends a request
// across; wrong or missing credentials fail to connect with an error
// saying so.
func TestAuthAgainstRealServers(t *testing.T) {
	tlsFiles := natstest.WriteTLS(t)
	otherTLS := natstest.WriteTLS(t) // a CA the server's certificate is not from
	seed, nkeyOpts := natstest.NKeyUser(t)
	otherSeed, _ := natstest.NKeyUser(t)
	creds, credsOpts := natstest.Creds(t)
	otherCreds, _ := natstest.Creds(t)

	tlsAndNKey := tlsFiles.ServerOptions(t)
	tlsAndNKey.Nkeys = nkeyOpts.Nkeys
	secure := natstest.RunWith(t, tlsAndNKey)
	operator := natstest.RunWith(t, credsOpts)
	secureURL := strings.Replace(secure.ClientURL(), "nats://", "tls://", 1)

	full := natsconn.Auth{NKey: seed, TLSCert: tlsFiles.ClientCert, TLSKey: tlsFiles.ClientKey, TLSCA: tlsFiles.CA}
	with := func(change func(*natsconn.Auth)) natsconn.Auth {
		a := full
		change(&a)
		return a
	}
	tests := []struct {
		name    string
		url     string
		auth    natsconn.Auth
		wantErr string // "" when the connection must work
	}{
		{"TLS with a client certificate and an nkey", secureURL, full, ""},
		{"a creds file", operator.ClientURL(), natsconn.Auth{Creds: creds}, ""},
		{"server's CA not given", secureURL, with(func(a *natsconn.Auth) { a.TLSCA = "" }), "certificate"},
		{"server's certificate from another CA", secureURL, with(func(a *natsconn.Auth) { a.TLSCA = otherTLS.CA }), "certificate"},
		{"client certificate from another CA", secureURL, with(func(a *natsconn.Auth) {
			a.TLSCert, a.TLSKey = otherTLS.ClientCert, otherTLS.ClientKey
		}), "certificate"},
		{"no nkey", secureURL, with(func(a *natsconn.Auth) { a.NKey = "" }), "authorization violation"},
		{"another user's nkey", secureURL, with(func(a *natsconn.Auth) { a.NKey = otherSeed }), "authorization violation"},
		{"creds from another operator", operator.ClientURL(), natsconn.Auth{Creds: otherCreds}, "authorization violation"},
		{"no creds", operator.ClientURL(), natsconn.Auth{}, "authorization violation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := tc.auth.Options()
			if err != nil {
				t.Fatal(err)
			}
			opts = append(opts, natsconn.Coalesce(), nats.Timeout(5*time.Second))
			nc, err := nats.Connect(tc.url, opts...)
			if tc.wantErr != "" {
				if err == nil {
					nc.Close()
					t.Fatalf("connected; want an error containing %q", tc.wantErr)
				}
				if !strings.Contains(strings.ToLower(err.Error()), tc.wantErr) {
					t.Fatalf("error %q, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			requestAcross(t, nc)
		})
	}
}

// requestAcross answers a request on nc and asks it from the same
// connection, so both directions cross the socket.
func requestAcross(t *testing.T, nc *nats.Conn) {
	t.Helper()
	sub, err := nc.Subscribe("echo", func(m *nats.Msg) { _ = m.Respond(append([]byte("echo "), m.Data...)) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	reply, err := nc.Request("echo", []byte("hi"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(reply.Data) != "echo hi" {
		t.Fatalf("reply %q", reply.Data)
	}
}

// TestAuthOptionsRejectBadFiles: files that cannot work are refused before
// any connection is tried, naming the file or the flags.
func TestAuthOptionsRejectBadFiles(t *testing.T) {
	dir := t.TempDir()
	notASeed := filepath.Join(dir, "not-a-seed")
	if err := os.WriteFile(notASeed, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		auth    natsconn.Auth
		wantErr string
	}{
		{"missing creds file", natsconn.Auth{Creds: filepath.Join(dir, "nope.creds")}, "credentials file"},
		{"missing nkey seed file", natsconn.Auth{NKey: filepath.Join(dir, "nope.nk")}, "nkey seed file " + filepath.Join(dir, "nope.nk")},
		{"nkey file without a seed", natsconn.Auth{NKey: notASeed}, "nkey seed file " + notASeed},
		{"certificate without key", natsconn.Auth{TLSCert: notASeed}, "--tls-cert and --tls-key go together"},
		{"key without certificate", natsconn.Auth{TLSKey: notASeed}, "--tls-cert and --tls-key go together"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.auth.Options()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
