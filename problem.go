package metro

import (
	"net/http"

	"github.com/metropolis-dev/metro/internal/wire"
)

// Error answers w with an RFC 9457 problem body (application/problem+json)
// of the given status and detail, carrying the request's id, the same form
// the gateway uses for its own errors.
func Error(w http.ResponseWriter, r *http.Request, status int, detail string) {
	wire.WriteProblem(w, status, detail, RequestID(r), 0)
}

// RequestID returns the id the gateway gave the request being handled.
func RequestID(r *http.Request) string {
	if in := wire.IncomingFrom(r.Context()); in != nil {
		return in.RequestID
	}
	return r.Header.Get(wire.HeaderRequestID)
}
