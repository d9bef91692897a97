package metro

import (
	"net/http"

	"github.com/metropolis-dev/metro/internal/worker"
)

// Claims returns the claims of the bearer token that the gateway verified
// for r (gateway.auth.jwt in metro.yaml), nil when the request carried
// none: a route with auth none or optional, or a caller other than the
// gateway. Clients cannot forge them: the gateway drops every Metro-*
// header a client sends.
//
//	sub, _ := metro.Claims(r)["sub"].(string)
func Claims(r *http.Request) map[string]any { return worker.Claims(r) }
