// Package devtoken mints bearer tokens for development (metro token): a
// token the gateway of this project accepts, signed with a local key
// whose public half is the project's JWKS file.
package devtoken

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/policy"
)

// DefaultKeyFile is the signing key's file, beside metro.yaml.
const DefaultKeyFile = "dev-key.json"

// Options are metro token's flags.
type Options struct {
	Config *config.Config
	// Key is the private JWK file; "" is DefaultKeyFile beside metro.yaml.
	Key    string
	NewKey bool // write a new key and the JWKS file, then mint
	Sub    string
	TTL    time.Duration
	Claims map[string]string // more claims, as strings
	Now    func() time.Time
	Out    io.Writer // the token
	ErrOut io.Writer // what was written
}

// Run mints a token for the project's gateway.auth.jwt issuer and
// audience and writes it to Out.
func Run(o Options) error {
	c := o.Config
	if !c.Gateway.HasJWT() {
		return errors.New("metro.yaml sets no gateway.auth.jwt: the gateway checks no tokens")
	}
	jwt := c.Gateway.Auth.JWT
	keyPath := o.Key
	if keyPath == "" {
		keyPath = filepath.Join(c.Dir, DefaultKeyFile)
	}
	if o.NewKey {
		if err := newKey(c, keyPath, o.ErrOut); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(keyPath)
	if err != nil {
		return fmt.Errorf("reading the signing key (make one with --new-key): %w", err)
	}
	k, err := policy.ParseSigningKey(data)
	if err != nil {
		return fmt.Errorf("%s: %w", keyPath, err)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	t := now()
	ttl := o.TTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	claims := map[string]any{}
	for k, v := range maps.All(o.Claims) {
		claims[k] = v
	}
	claims["iat"] = t.Unix()
	claims["exp"] = t.Add(ttl).Unix()
	if o.Sub != "" {
		claims["sub"] = o.Sub
	}
	if jwt.Issuer != "" {
		claims["iss"] = jwt.Issuer
	}
	if jwt.Audience != "" {
		claims["aud"] = jwt.Audience
	}
	tok, err := k.Mint(claims)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(o.Out, tok)
	return err
}

// newKey writes a new Ed25519 signing key to keyPath and its JWKS to the
// file gateway.auth.jwt.jwks names; it overwrites neither.
func newKey(c *config.Config, keyPath string, log io.Writer) error {
	src := c.Gateway.Auth.JWT.JWKS
	if strings.Contains(src, "://") {
		return c.Errorf("gateway.auth.jwt.jwks", "is a URL: --new-key writes a JWKS file, so point it at one (e.g. jwks.json)")
	}
	jwksPath := src
	if !filepath.IsAbs(jwksPath) {
		jwksPath = filepath.Join(c.Dir, jwksPath)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generating a key: %w", err)
	}
	var id [4]byte
	rand.Read(id[:])
	k := policy.SigningKey{Key: priv, KID: "dev-" + hex.EncodeToString(id[:])}
	priv8, err := k.JWK()
	if err != nil {
		return err
	}
	set, err := policy.JWKS(k)
	if err != nil {
		return err
	}
	if err := create(keyPath, priv8, 0o600); err != nil {
		return err
	}
	if err := create(jwksPath, set, 0o644); err != nil {
		os.Remove(keyPath)
		return err
	}
	fmt.Fprintf(log, "wrote %s (private: keep it out of production) and %s\n", keyPath, jwksPath)
	return nil
}

func create(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
