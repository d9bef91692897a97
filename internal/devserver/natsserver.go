package devserver

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrPortInUse is returned when the embedded NATS server's port is taken.
var ErrPortInUse = errors.New("port in use")

// monitorOffset puts the monitoring endpoint where nats-server puts it by
// default relative to the client port (4222 -> 8222).
const monitorOffset = 4000

// startNATS runs an embedded nats-server on 127.0.0.1:port (0: random),
// with its HTTP monitoring endpoint on port+4000 (random when port is 0,
// or when that one is taken: it is a convenience, not worth failing for).
// conf, when set, is a config file read as nats-server reads it: the
// locked bus's authorization.
func startNATS(port int, conf string) (*server.Server, error) {
	host := "127.0.0.1"
	opts := &server.Options{}
	if conf != "" {
		if err := opts.ProcessConfigFile(conf); err != nil {
			return nil, fmt.Errorf("reading the NATS configuration %s: %w", conf, err)
		}
	}
	opts.ServerName = "metro-dev"
	opts.Host, opts.Port = host, port
	opts.HTTPHost, opts.HTTPPort = host, server.RANDOM_PORT
	opts.NoLog, opts.NoSigs = true, true
	if port == 0 {
		opts.Port = server.RANDOM_PORT
	} else {
		// nats-server only logs a failed listen and never becomes ready;
		// try the port first so the user hears why.
		if err := probe(host, port); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrPortInUse, err)
		}
		if mp := port + monitorOffset; mp <= 65535 && probe(host, mp) == nil {
			opts.HTTPPort = mp
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("starting NATS: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("starting NATS on %s: not ready after 10s", net.JoinHostPort(host, strconv.Itoa(port)))
	}
	return s, nil
}

func probe(host string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

// monitorURL is the monitoring endpoint of s, "" when there is none.
func monitorURL(s *server.Server) string {
	a := s.MonitorAddr()
	if a == nil {
		return ""
	}
	return "http://" + a.String()
}
