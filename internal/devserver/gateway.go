package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// gatewayServer is the in-process gateway: the same handler as
// metro gateway, on its listeners.
type gatewayServer struct {
	gw        *proxy.Gateway
	srv       *http.Server
	admin     *http.Server
	ln, admLn net.Listener
}

func startGateway(nc *nats.Conn, cfg *config.Config, log *slog.Logger) (*gatewayServer, error) {
	tp, err := proxy.ParseTrustedProxies(cfg.Gateway.TrustedProxies)
	if err != nil {
		return nil, cfg.Errorf("gateway.trusted_proxies", "%v", err)
	}
	if len(cfg.Gateway.TrustedProxies) == 0 {
		tp = nil
	}
	routes := make([]proxy.RouteConfig, len(cfg.Gateway.Routes))
	for i, r := range cfg.Gateway.Routes {
		routes[i] = proxy.RouteConfig{Match: r.Match, Timeout: r.Timeout.Std()}
	}
	gw, err := proxy.New(nc, proxy.Config{
		Prefix:         cfg.Gateway.Prefix,
		Timeout:        cfg.Gateway.Timeout.Std(),
		MaxBody:        cfg.Gateway.MaxBody.Int64(),
		TrustedProxies: tp,
		Routes:         routes,
		RouteTTL:       cfg.Gateway.RouteTTL.Std(),
		Logger:         log,
		AccessLog:      log,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the gateway: %w", err)
	}
	g := &gatewayServer{gw: gw}
	g.ln, err = net.Listen("tcp", cfg.Gateway.Listen)
	if err != nil {
		return nil, cfg.Errorf("gateway.listen", "%v (another metro dev? use --listen to pick another address)", err)
	}
	g.srv = &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	if cfg.Gateway.Admin != "" {
		g.admLn, err = net.Listen("tcp", cfg.Gateway.Admin)
		if err != nil {
			g.ln.Close()
			return nil, cfg.Errorf("gateway.admin", "%v", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !gw.Ready() {
				http.Error(w, "not ready", http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte("ok\n"))
		})
		g.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}
	return g, nil
}

func (g *gatewayServer) Addr() string { return g.ln.Addr().String() }

func (g *gatewayServer) AdminAddr() string {
	if g.admLn == nil {
		return ""
	}
	return g.admLn.Addr().String()
}

// Run serves until ctx ends, then shuts down gracefully.
func (g *gatewayServer) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	n := 2
	go func() { errc <- g.gw.Run(ctx) }()
	go func() { errc <- serve(g.srv, g.ln) }()
	if g.admin != nil {
		n++
		go func() { errc <- serve(g.admin, g.admLn) }()
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
		n--
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	g.srv.Shutdown(sctx) //nolint:errcheck
	if g.admin != nil {
		g.admin.Shutdown(sctx) //nolint:errcheck
	}
	for range n {
		if err := <-errc; first == nil {
			first = err
		}
	}
	return first
}

func serve(s *http.Server, ln net.Listener) error {
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving HTTP: %w", err)
	}
	return nil
}
