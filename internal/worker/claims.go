package worker

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/metropolis-dev/metro/internal/wire"
)

// Claims decodes the Metro-Claims header of r: the claims of the bearer
// token the gateway verified, nil when there is none or it does not
// decode. The gateway drops any Metro-* header a client sends, so only it
// can set this one; a caller with access to NATS is trusted as the
// gateway is.
func Claims(r *http.Request) map[string]any {
	v := r.Header.Get(wire.HeaderClaims)
	if v == "" {
		return nil
	}
	// JWS uses unpadded base64url; tolerate padding from other callers.
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
	if err != nil {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil
	}
	return m
}
