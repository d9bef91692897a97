package devtoken_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/devtoken"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// TestNewKeyAndToken: on a project with no keys yet, --new-key writes the
// key pair, and the token printed is accepted by the gateway this
// metro.yaml configures, with the claims asked for.
func TestNewKeyAndToken(t *testing.T) {
	dir := t.TempDir()
	yaml := "name: p\ngateway:\n  auth:\n    jwt: {jwks: keys/jwks.json, issuer: dev, audience: p}\n"
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "metro.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(filepath.Join(dir, "metro.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out, log bytes.Buffer
	now := time.Now()
	o := devtoken.Options{Config: c, NewKey: true, Sub: "alice", TTL: 5 * time.Minute,
		Claims: map[string]string{"role": "admin"}, Now: func() time.Time { return now }, Out: &out, ErrOut: &log}
	if err := devtoken.Run(o); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, devtoken.DefaultKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", fi, err)
	}
	set, err := proxy.PoliciesFrom(c)
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(out.String())
	cl, err := set.Verifier().Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("token %q: %v", tok, err)
	}
	exp, _ := cl.Map.GetExpirationTime()
	if cl.Map["sub"] != "alice" || cl.Map["role"] != "admin" || cl.Map["iss"] != "dev" || exp == nil || !exp.Time.Equal(now.Add(5*time.Minute).Truncate(time.Second)) {
		t.Errorf("claims %v", cl.Map)
	}
	// An independent reading of the header: the algorithm is EdDSA.
	p, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil || p.Method.Alg() != "EdDSA" {
		t.Errorf("header: %v %v", p, err)
	}
	// The key is not overwritten.
	o.NewKey = true
	if err := devtoken.Run(o); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second --new-key: %v", err)
	}
}
