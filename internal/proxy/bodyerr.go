package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
)

// bodyReadStatus is the status for a request whose body could not be
// read: 413 past the size limit, 408 Request Timeout when it did not
// arrive before the read deadline (RFC 9110 section 15.5.9: the server
// would not wait longer; the client may send it again), 400 otherwise
// (a malformed chunk, a client that hung up mid-body).
func bodyReadStatus(err error) int {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return http.StatusRequestTimeout
	}
	return http.StatusBadRequest
}
