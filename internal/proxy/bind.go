package proxy

import (
	"fmt"
	"log/slog"
	"net"
)

// Some listeners have no authentication of their own: the embedded NATS
// server and the admin address while it serves pprof (profiles show
// memory and code paths; /debug/pprof/profile costs CPU on demand). For
// those an empty host means loopback, not every interface, and binding
// anywhere else is logged as a warning: it has to be asked for, and
// whoever reads the log learns it is open.

// localByDefault returns addr ("host:port") with an empty host made
// 127.0.0.1, and warns when the host is not a loopback one.
func localByDefault(addr, what string, log *slog.Logger) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if host == "" {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	if !isLoopback(host) {
		log.Warn(fmt.Sprintf("%s listens beyond this machine, without authentication", what), "addr", addr)
	}
	return addr, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
