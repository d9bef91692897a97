package natstest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// NKeyUser makes a user nkey, writes its seed to a file and returns the
// file and the server options that admit only that user.
func NKeyUser(t testing.TB) (seedFile string, opts *server.Options) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile = filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return seedFile, &server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}}
}

// NKeyUserToRevoke is NKeyUser for a test that restarts its server
// without the user: opts admits the user, revoked only another one, both
// on the same free port.
func NKeyUserToRevoke(t testing.TB) (seedFile string, opts, revoked *server.Options) {
	t.Helper()
	seedFile, opts = NKeyUser(t)
	_, revoked = NKeyUser(t)
	opts.Port = FreePort(t)
	revoked.Port = opts.Port
	return seedFile, opts, revoked
}

// Creds sets up decentralised auth as a NATS operator would: an operator
// that the server trusts, an account it signed, and a user of that account
// whose JWT and seed are written as a .creds file.
func Creds(t testing.TB) (credsFile string, opts *server.Options) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	op, err := nkeys.CreateOperator()
	must(err)
	opPub, _ := op.PublicKey()
	opJWT, err := jwt.NewOperatorClaims(opPub).Encode(op)
	must(err)
	opClaims, err := jwt.DecodeOperatorClaims(opJWT)
	must(err)

	acc, err := nkeys.CreateAccount()
	must(err)
	accPub, _ := acc.PublicKey()
	accJWT, err := jwt.NewAccountClaims(accPub).Encode(op)
	must(err)
	resolver := &server.MemAccResolver{}
	must(resolver.Store(accPub, accJWT))

	user, err := nkeys.CreateUser()
	must(err)
	userPub, _ := user.PublicKey()
	uc := jwt.NewUserClaims(userPub)
	uc.IssuerAccount = accPub
	userJWT, err := uc.Encode(acc)
	must(err)
	seed, _ := user.Seed()
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	must(err)
	credsFile = filepath.Join(t.TempDir(), "user.creds")
	must(os.WriteFile(credsFile, creds, 0o600))
	return credsFile, &server.Options{TrustedOperators: []*jwt.OperatorClaims{opClaims}, AccountResolver: resolver}
}
