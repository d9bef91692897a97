package policy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// SigningKey is a private key with its kid, for minting tokens in
// development (metro token) and tests. Production tokens come from the
// issuer; the gateway itself only verifies.
type SigningKey struct {
	Key crypto.Signer
	KID string
}

// ParseSigningKey reads a private key from a JWK (RFC 7517) document.
func ParseSigningKey(data []byte) (SigningKey, error) {
	j, err := jwkset.NewJWKFromRawJSON(data, jwkset.JWKMarshalOptions{Private: true}, jwkset.JWKValidateOptions{})
	if err != nil {
		return SigningKey{}, fmt.Errorf("reading the signing key: %w", err)
	}
	s, ok := j.Key().(crypto.Signer)
	if !ok {
		return SigningKey{}, errors.New("reading the signing key: the JWK holds no private RSA, EC or Ed25519 key")
	}
	return SigningKey{Key: s, KID: j.Marshal().KID}, nil
}

// JWK returns k's private JWK document.
func (k SigningKey) JWK() ([]byte, error) {
	j, err := jwkset.NewJWKFromKey(k.Key, jwkset.JWKOptions{
		Marshal:  jwkset.JWKMarshalOptions{Private: true},
		Metadata: jwkset.JWKMetadataOptions{KID: k.KID, ALG: jwkset.ALG(k.alg()), USE: jwkset.UseSig},
	})
	if err != nil {
		return nil, fmt.Errorf("writing the signing key: %w", err)
	}
	return json.MarshalIndent(j.Marshal(), "", "  ")
}

// JWKS returns the public JWKS document of keys.
func JWKS(keys ...SigningKey) ([]byte, error) {
	var set jwkset.JWKSMarshal
	for _, k := range keys {
		j, err := jwkset.NewJWKFromKey(k.Key.Public(), jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: k.KID, ALG: jwkset.ALG(k.alg()), USE: jwkset.UseSig},
		})
		if err != nil {
			return nil, fmt.Errorf("writing the JWKS: %w", err)
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	return json.MarshalIndent(set, "", "  ")
}

// alg is the JWS algorithm for the key's type.
func (k SigningKey) alg() string {
	return k.method().Alg()
}

func (k SigningKey) method() jwt.SigningMethod {
	switch key := k.Key.(type) {
	case *ecdsa.PrivateKey:
		switch key.Curve {
		case elliptic.P384():
			return jwt.SigningMethodES384
		case elliptic.P521():
			return jwt.SigningMethodES512
		}
		return jwt.SigningMethodES256
	case ed25519.PrivateKey:
		return jwt.SigningMethodEdDSA
	case *rsa.PrivateKey:
		return jwt.SigningMethodRS256
	}
	return jwt.SigningMethodRS256
}

// Mint signs claims with k, naming its kid in the header.
func (k SigningKey) Mint(claims map[string]any) (string, error) {
	t := jwt.NewWithClaims(k.method(), jwt.MapClaims(claims))
	if k.KID != "" {
		t.Header["kid"] = k.KID
	}
	s, err := t.SignedString(k.Key)
	if err != nil {
		return "", fmt.Errorf("signing the token: %w", err)
	}
	return s, nil
}
