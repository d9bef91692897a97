package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/subject"
)

// Problem is an RFC 9457 problem detail, with the request id as an
// extension member so a client can quote it.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// ProblemContentType is the media type of a problem body.
const ProblemContentType = "application/problem+json"

// NewProblem returns the problem for status with the given detail.
func NewProblem(status int, detail, requestID string) Problem {
	return Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, RequestID: requestID}
}

// Body encodes p as JSON.
func (p Problem) Body() []byte {
	b, _ := json.Marshal(p) // cannot fail: strings and an int
	return b
}

// WriteProblem answers w with a problem body. retryAfter > 0 sets
// Retry-After in seconds (503 answers that will likely pass soon).
func WriteProblem(w http.ResponseWriter, status int, detail, requestID string, retryAfter int) {
	h := w.Header()
	h["Content-Type"] = []string{ProblemContentType}
	if retryAfter > 0 {
		h["Retry-After"] = []string{strconv.Itoa(retryAfter)}
	}
	body := NewProblem(status, detail, requestID).Body()
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body)
}

// RetryAfterSeconds is what 503 answers ask clients to wait.
const RetryAfterSeconds = 1

// ErrConnectionLost is a request's error when its connection dropped
// while it waited for the reply: the reply would have come through a
// subscription on the server that is gone, so none can come. The request
// was sent, so a worker may have run it.
var ErrConnectionLost = fmt.Errorf("the connection to NATS was lost while waiting for the reply: %w", nats.ErrDisconnected)

// ErrorStatus maps an error of a NATS request to the status a client
// sees, so that the gateway and metro.Transport answer alike.
func ErrorStatus(err error) (status int, detail string) {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return http.StatusServiceUnavailable, "no worker is available for this route"
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "no reply from a worker before the timeout"
	case errors.Is(err, ErrConnectionLost):
		return http.StatusServiceUnavailable, "the connection to NATS was lost while waiting for the reply"
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrConnectionDraining), errors.Is(err, nats.ErrDisconnected):
		return http.StatusServiceUnavailable, "not connected to NATS"
	case errors.Is(err, nats.ErrMaxPayload):
		return http.StatusRequestEntityTooLarge, "request larger than NATS max_payload allows"
	case errors.Is(err, ErrBadReply):
		return http.StatusBadGateway, err.Error()
	}
	return http.StatusBadGateway, err.Error()
}

// PathStatus is the status for an error of subject.Append: 405 for a bad
// method, 414 for a path over the limits, 400 otherwise.
func PathStatus(err error) int {
	switch {
	case errors.Is(err, subject.ErrMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, subject.ErrTooLong):
		return http.StatusRequestURITooLong
	}
	return http.StatusBadRequest
}
