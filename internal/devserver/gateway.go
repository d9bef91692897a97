package devserver

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// startGateway starts the same gateway as metro gateway, on metro dev's
// own NATS connection, its logs and access log going to out.
func startGateway(ctx context.Context, nc *nats.Conn, cfg *config.Config, listenFlag bool, con *console, tp *sdktrace.TracerProvider) (*proxy.Server, error) {
	gcfg, err := proxy.ConfigFrom(cfg)
	if err != nil {
		return nil, err
	}
	if tp != nil {
		gcfg.TracerProvider = tp
	}
	// The gateway names an address it cannot listen on; try them first so
	// the message can also say where the address comes from.
	if err := probeAddr(cfg.Gateway.Listen); err != nil {
		if listenFlag {
			return nil, fmt.Errorf("--listen %s: %v", cfg.Gateway.Listen, err)
		}
		return nil, cfg.Errorf("gateway.listen", "%v (another metro dev? use --listen to pick another address)", err)
	}
	if a := cfg.Gateway.Admin; a != "" {
		if err := probeAddr(a); err != nil {
			return nil, cfg.Errorf("gateway.admin", "%v (another metro dev? set gateway.admin, or \"\" for none)", err)
		}
	}
	// One writer for both logs: lines of one never split those of the other.
	w := proxy.NewLogWriter(con.writer("gateway"))
	s, err := proxy.NewServer(ctx, proxy.ServerConfig{
		Listen:        cfg.Gateway.Listen,
		Admin:         cfg.Gateway.Admin,
		Conn:          nc,
		Gateway:       gcfg,
		Logger:        newLogger(w),
		AccessLog:     w,
		AccessLogText: true,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the gateway: %w", err)
	}
	return s, nil
}

func probeAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p == 0 {
		return nil // a random port or a service name: nothing to check
	}
	return probe(host, p)
}

// addrString is a listener's address, "" when there is none.
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
