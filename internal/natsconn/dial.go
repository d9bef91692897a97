package natsconn

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// Dial connects a long-running process (the gateway, a worker) to the
// server at url.
//
// A server that cannot be reached yet is waited for: Dial logs why, returns
// a connection that keeps retrying in the background, and logs again when
// the reason changes and once connected. A server that answers but refuses
// (credentials, TLS, a URL that is not NATS) is an error at once, because
// every retry would be refused the same way and nothing would say so.
//
// lost receives why, once the connection has closed. Unless the caller
// closed it, that is for good: nats.go gives up when the server refuses the
// same credentials twice in a row (say, after they were revoked), and the
// process can only stop. Disconnections and asynchronous errors are logged.
func Dial(url string, log *slog.Logger, opts ...nats.Option) (nc *nats.Conn, lost <-chan error, err error) {
	ev := &events{log: log, url: Redact(url), lost: make(chan error, 1)}
	// The caller's options come after these, so its own handlers win.
	logged := append([]nats.Option{
		nats.DisconnectErrHandler(ev.disconnected),
		nats.ReconnectHandler(ev.connected),
		nats.ReconnectErrHandler(ev.retrying),
		nats.ErrorHandler(ev.asyncError),
		nats.ClosedHandler(ev.closed),
	}, opts...)
	nc, err = nats.Connect(url, logged...)
	if err != nil && unreachable(err) {
		ev.retrying(nil, err)
		retry := append([]nats.Option{nats.ConnectHandler(ev.connected)}, logged...)
		nc, err = nats.Connect(url, append(retry, nats.RetryOnFailedConnect(true))...)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to NATS at %s: %w", ev.url, err)
	}
	return nc, ev.lost, nil
}

// unreachable tells a server that is not there (yet) from one that refused
// the connection.
func unreachable(err error) bool {
	var op *net.OpError
	return errors.Is(err, nats.ErrNoServers) || (errors.As(err, &op) && op.Op == "dial")
}

// events logs a connection's life. While retrying, nats.go reports every
// failed attempt; only a new reason is worth a line.
type events struct {
	log      *slog.Logger
	url      string
	mu       sync.Mutex
	lastFail string
	lost     chan error
}

func (e *events) retrying(_ *nats.Conn, err error) {
	why := err.Error()
	if errors.Is(err, nats.ErrNoServers) {
		// How nats.go reports a refused first attempt; later attempts
		// report the dial error, which names the address.
		why = "connection refused"
	}
	same := why
	if strings.Contains(why, "connection refused") {
		same = "connection refused"
	}
	e.mu.Lock()
	fresh := same != e.lastFail
	e.lastFail = same
	e.mu.Unlock()
	if fresh {
		e.log.Warn("NATS not reachable; retrying", "url", e.url, "err", why)
	}
}

func (e *events) connected(nc *nats.Conn) {
	e.mu.Lock()
	e.lastFail = ""
	e.mu.Unlock()
	e.log.Info("NATS connected", "url", nc.ConnectedUrlRedacted())
}

func (e *events) disconnected(_ *nats.Conn, err error) {
	// Without an error it is the process closing its own connection.
	if err != nil {
		e.log.Warn("NATS disconnected", "err", err)
	}
}

func (e *events) asyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) {
		// The server's text names the operation and the subject.
		e.log.Error("NATS refused an operation: not permitted for this identity", "err", err)
		return
	}
	if sub != nil {
		e.log.Warn("NATS error", "subject", sub.Subject, "err", err)
	} else {
		e.log.Warn("NATS error", "err", err)
	}
}

func (e *events) closed(nc *nats.Conn) {
	err := nc.LastError()
	if err == nil {
		err = nats.ErrConnectionClosed
	}
	select {
	case e.lost <- err:
	default:
	}
}
