package policy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AuthMode says what a route asks of a bearer token.
type AuthMode int

const (
	// AuthRequired: no valid token, no request (the default once JWT is
	// configured).
	AuthRequired AuthMode = iota
	// AuthOptional: a valid token's claims are passed on; an invalid one
	// is still refused, since a client that sends one expects it to count.
	AuthOptional
	// AuthNone: the Authorization header is not looked at.
	AuthNone
)

// ParseAuthMode reads "required", "optional" or "none".
func ParseAuthMode(s string) (AuthMode, error) {
	switch s {
	case "required":
		return AuthRequired, nil
	case "optional":
		return AuthOptional, nil
	case "none":
		return AuthNone, nil
	}
	return 0, fmt.Errorf("%q is not an auth mode (required, optional or none)", s)
}

// DefaultLeeway is the clock skew allowed on exp, nbf and iat.
const DefaultLeeway = 30 * time.Second

// asymmetric are the algorithms a token may be signed with: a JWKS
// publishes public keys, and accepting HMAC or "none" would let anyone
// holding the public key, or nobody at all, mint tokens (RFC 8725 3.1).
var asymmetric = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA",
}

// JWTConfig is gateway.auth.jwt.
type JWTConfig struct {
	JWKS     string // URL or file path
	Issuer   string
	Audience string
	Leeway   time.Duration
}

// Verifier checks bearer tokens against a key set.
type Verifier struct {
	keys   *KeySet
	parser *jwt.Parser
}

// NewVerifier checks tokens signed by keys, issued by cfg.Issuer for
// cfg.Audience (either may be empty: not checked).
func NewVerifier(cfg JWTConfig, keys *KeySet) *Verifier {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(asymmetric),
		jwt.WithLeeway(or(cfg.Leeway, DefaultLeeway)),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &Verifier{keys: keys, parser: jwt.NewParser(opts...)}
}

// Keys is the verifier's key set.
func (v *Verifier) Keys() *KeySet { return v.keys }

// Claims are a verified token's claims: Raw is its payload as sent
// (base64url JSON), what the gateway passes to the worker unchanged.
type Claims struct {
	Raw string
	Map jwt.MapClaims
}

// Verify checks token and returns its claims.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	var mc jwt.MapClaims
	t, err := v.parser.ParseWithClaims(token, &mc, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return v.keys.Key(ctx, kid)
	})
	if err != nil {
		return nil, err
	}
	if !t.Valid {
		return nil, errors.New("token is not valid")
	}
	// The payload is the second of the three dot-separated parts, which
	// the parser has just verified.
	_, rest, _ := strings.Cut(token, ".")
	payload, _, _ := strings.Cut(rest, ".")
	return &Claims{Raw: payload, Map: mc}, nil
}

// BearerToken reads the token of an "Authorization: Bearer" header (RFC
// 6750 2.1). ok is false when the request offers no bearer token (no
// header, or another scheme); malformed is true for a Bearer header
// without a token, or more than one Authorization header.
func BearerToken(h http.Header) (token string, ok, malformed bool) {
	v := h["Authorization"]
	switch {
	case len(v) == 0:
		return "", false, false
	case len(v) > 1:
		return "", false, true
	}
	scheme, tok, _ := strings.Cut(strings.TrimSpace(v[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false, false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", false, true
	}
	return tok, true, false
}

// challenge is a WWW-Authenticate value (RFC 6750 3): without an error
// attribute when the request carried no token, as the RFC asks.
func challenge(errCode, desc string) string {
	if errCode == "" {
		return `Bearer realm="metro"`
	}
	return `Bearer realm="metro", error="` + errCode + `", error_description="` + quoteSafe(desc) + `"`
}

// quoteSafe keeps desc inside a quoted-string: RFC 6750 allows only
// %x20-21 / %x23-5B / %x5D-7E in error_description.
func quoteSafe(desc string) string {
	b := make([]byte, 0, len(desc))
	for i := 0; i < len(desc); i++ {
		c := desc[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			c = ' '
		}
		b = append(b, c)
	}
	return string(b)
}

// describe turns a verification error into words safe to show a client:
// what was wrong with the token, not the gateway's internals.
func describe(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the token's issuer is not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "the token is not meant for this audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "the token lacks a required claim (exp)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		if errors.Is(err, ErrUnknownKey) {
			return "the token's key is not known"
		}
		return "the token's signature does not verify or its algorithm is not accepted"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "the token is malformed"
	}
	return "the token is not valid"
}
