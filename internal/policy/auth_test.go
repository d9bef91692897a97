package policy

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func testKeys(t testing.TB) []SigningKey {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return []SigningKey{{Key: ec, KID: "es"}, {Key: ed, KID: "ed"}}
}

func fileVerifier(t testing.TB, keys ...SigningKey) *Verifier {
	t.Helper()
	doc, err := JWKS(keys...)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	ks, err := NewKeySet(p, "", KeySetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return NewVerifier(JWTConfig{Issuer: "iss", Audience: "aud"}, ks)
}

// TestMintVerify: a token minted with a key (metro token) verifies
// against the JWKS written for it, and its claims come back.
func TestMintVerify(t *testing.T) {
	keys := testKeys(t)
	v := fileVerifier(t, keys...)
	for _, k := range keys {
		tok, err := k.Mint(map[string]any{"iss": "iss", "aud": "aud", "sub": "alice", "exp": time.Now().Add(time.Minute).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		c, err := v.Verify(context.Background(), tok)
		if err != nil {
			t.Fatalf("%s: %v", k.KID, err)
		}
		if c.Map["sub"] != "alice" || c.Raw == "" {
			t.Errorf("%s: claims %+v", k.KID, c)
		}
		// The private JWK reads back as the same signing key.
		doc, err := k.JWK()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseSigningKey(doc)
		if err != nil {
			t.Fatal(err)
		}
		tok2, err := back.Mint(map[string]any{"iss": "iss", "aud": "aud", "exp": time.Now().Add(time.Minute).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(context.Background(), tok2); err != nil || back.KID != k.KID {
			t.Errorf("%s: token of the key read back from its JWK: %v (kid %q)", k.KID, err, back.KID)
		}
	}
}

// BenchmarkVerify is the cost of verifying one token with a cached key.
func BenchmarkVerify(b *testing.B) {
	keys := testKeys(b)
	v := fileVerifier(b, keys...)
	for _, k := range keys {
		tok, err := k.Mint(map[string]any{"iss": "iss", "aud": "aud", "sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(k.KID, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
