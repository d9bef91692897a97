package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/metropolis-dev/metro/internal/natsconn"
)

// ServerConfig is a whole gateway process: listeners, NATS, gateway.
type ServerConfig struct {
	Listen string // HTTP for clients, e.g. ":8080"
	Admin  string // /healthz /readyz /metrics; "" for none
	// NATSURL is the server to connect to, unless EmbedNATS is set.
	NATSURL     string
	NATSOptions []nats.Option
	// EmbedNATS, when set, runs a nats-server in this process listening
	// there (host:port; an empty host is 127.0.0.1) for workers; the
	// gateway talks to it in process.
	EmbedNATS string
	// Conn, when set, is used as is (and not closed): metro dev passes
	// its own connection to its embedded server.
	Conn    *nats.Conn
	Gateway Config
	// ShutdownTimeout bounds how long in-flight requests may take to
	// finish after a stop; default: the longest route timeout plus 5s.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	// AccessLog, when set, gets one entry per request, JSON or (with
	// AccessLogText) text, written in batches. When Logger writes to the
	// same output, make both a *LogWriter on it: lines then never break.
	AccessLog     io.Writer
	AccessLogText bool
	// Pprof serves net/http/pprof under /debug/pprof/ on the admin
	// listener, which then binds 127.0.0.1 when Admin has no host.
	Pprof bool
}

// Server runs a gateway on its listeners.
type Server struct {
	cfg      ServerConfig
	gw       *Gateway
	nc       *nats.Conn
	ownConn  bool
	natsLost <-chan error // see natsconn.Dial; nil when Conn was given
	ns       *server.Server
	ln       net.Listener
	adminLn  net.Listener
	http     *http.Server
	admin    *http.Server
	stopping atomic.Bool
	// lameDuck is the gateway to tell of a server's lame duck mode, once
	// there is one (the notice may come while NewServer still runs).
	lameDuck atomic.Pointer[Gateway]
	log      *slog.Logger
	access   *LogWriter
}

// NewServer connects to NATS (retrying in the background while the server
// cannot be reached: the gateway answers 503 and is not ready until
// connected; a server that refuses the connection is an error), binds the
// listeners and builds the gateway. Run serves.
func NewServer(ctx context.Context, cfg ServerConfig) (*Server, error) {
	s := &Server{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	if cfg.Gateway.Logger == nil {
		cfg.Gateway.Logger = s.log
	}
	ok := false
	defer func() {
		if !ok {
			s.closeAll()
		}
	}()
	if err := s.connect(); err != nil {
		return nil, err
	}
	if s.ownConn && s.ns == nil {
		cfg.Gateway.redial = s.redial
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Gateway.Registerer = reg
	if cfg.AccessLog != nil {
		lw, ok := cfg.AccessLog.(*LogWriter)
		if !ok {
			lw = NewLogWriter(cfg.AccessLog)
		}
		s.access = lw
		if cfg.AccessLogText {
			cfg.Gateway.AccessLog = slog.New(slog.NewTextHandler(batchWriter{lw}, nil))
		} else {
			cfg.Gateway.AccessLog = slog.New(newAccessJSON(batchWriter{lw}))
		}
	}
	gw, err := New(s.nc, cfg.Gateway)
	if err != nil {
		return nil, err
	}
	s.gw = gw
	s.lameDuck.Store(gw)
	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("gateway listener on %s: %w", cfg.Listen, err)
	}
	const maxHeaderBytes = 64 << 10
	// net/http reads at most MaxHeaderBytes plus 4096 bytes of slack for a
	// header block; the framing check holds a block up to that.
	s.ln = &framingListener{Listener: s.ln, maxHeader: maxHeaderBytes + 4096 + 1024}
	timeout := cmp(cfg.Gateway.Timeout, DefaultTimeout)
	s.http = &http.Server{
		Handler:     framingGuard(gw, s.log),
		ConnContext: framingContext,
		// "OPTIONS *" goes to the gateway like any request (and gets its
		// 400), instead of net/http's own answer.
		DisableGeneralOptionsHandler: true,
		// Slow-loris bounds: headers must arrive promptly and be small;
		// the body has the route timeout's time to arrive.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       timeout + readMargin,
		WriteTimeout:      timeout + writeMargin,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if cfg.Admin != "" {
		admin := cfg.Admin
		if cfg.Pprof {
			if admin, err = localByDefault(admin, "the admin address, serving pprof,", s.log); err != nil {
				return nil, fmt.Errorf("admin address %q: %w", cfg.Admin, err)
			}
		}
		if s.adminLn, err = net.Listen("tcp", admin); err != nil {
			return nil, fmt.Errorf("admin listener on %s: %w", cfg.Admin, err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
		mux.HandleFunc("GET /readyz", s.readyz)
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		if cfg.Pprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		s.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
	}
	ok = true
	return s, nil
}

func (s *Server) connect() error {
	if s.cfg.Conn != nil {
		s.nc = s.cfg.Conn
		return nil
	}
	opts := append(s.baseOptions(), nats.LameDuckModeHandler(func(*nats.Conn) {
		if gw := s.lameDuck.Load(); gw != nil {
			gw.LameDuck()
		}
	}))
	url := s.cfg.NATSURL
	if s.cfg.EmbedNATS != "" {
		addr, err := localByDefault(s.cfg.EmbedNATS, "the embedded NATS server", s.log)
		if err != nil {
			return fmt.Errorf("--embed-nats %q: %w", s.cfg.EmbedNATS, err)
		}
		host, port, err := splitHostPort(addr)
		if err != nil {
			return fmt.Errorf("--embed-nats %q: %w", s.cfg.EmbedNATS, err)
		}
		ns, err := server.NewServer(&server.Options{Host: host, Port: port, NoSigs: true, NoLog: true})
		if err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			ns.Shutdown()
			return fmt.Errorf("embedded NATS on %s did not start (port in use?)", s.cfg.EmbedNATS)
		}
		s.ns = ns
		opts = append(opts, nats.InProcessServer(ns))
		url = ns.ClientURL()
	}
	if url == "" {
		url = nats.DefaultURL
	}
	nc, lost, err := natsconn.Dial(url, s.log, opts...)
	if err != nil {
		return err
	}
	s.nc, s.ownConn, s.natsLost = nc, true, lost
	return nil
}

func (s *Server) baseOptions() []nats.Option {
	return append([]nats.Option{
		nats.Name("metro gateway"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		natsconn.Coalesce(),
	}, s.cfg.NATSOptions...)
}

// redial connects a second time to the cluster, to any server but one in
// lame duck mode (which takes no new connections), for Gateway.LameDuck.
func (s *Server) redial() (*nats.Conn, error) {
	return nats.Connect(strings.Join(s.nc.Servers(), ","), s.baseOptions()...)
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := net.LookupPort("tcp", p)
	if err != nil {
		return "", 0, err
	}
	if port == 0 {
		// As for every other listener, 0 picks a free port; to
		// nats-server, 0 would mean its default, 4222.
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.stopping.Load() || !s.gw.Ready() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ok\n"))
}

// Gateway returns the handler, for tests and metro dev.
func (s *Server) Gateway() *Gateway { return s.gw }

// Addr is the client listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// AdminAddr is the admin listener's address, nil without one.
func (s *Server) AdminAddr() net.Addr {
	if s.adminLn == nil {
		return nil
	}
	return s.adminLn.Addr()
}

// Run serves until ctx ends, then stops gracefully: readiness goes false,
// the listener closes, requests in flight finish, NATS drains.
func (s *Server) Run(ctx context.Context) error {
	defer s.closeAll()
	gctx, stopGateway := context.WithCancel(context.Background())
	defer stopGateway()
	discoveryDone := make(chan error, 1)
	go func() { discoveryDone <- s.gw.Run(gctx) }()

	errc := make(chan error, 2)
	go func() { errc <- serve(s.http, s.ln) }()
	if s.admin != nil {
		go func() { errc <- serve(s.admin, s.adminLn) }()
	}
	s.log.Info("gateway listening", "addr", s.ln.Addr().String(), "prefix", s.cfg.Gateway.Prefix)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	case lost := <-s.natsLost:
		err = fmt.Errorf("NATS connection closed for good: %w", lost)
	}
	s.stopping.Store(true)
	s.log.Info("gateway stopping: finishing requests in flight")
	timeout := s.cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = s.cfg.Gateway.longestTimeout() + 5*time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s.gw.EndEventStreams() // they would hold the stop up to their route's timeout
	if serr := s.http.Shutdown(sctx); serr != nil {
		err = errors.Join(err, fmt.Errorf("stopping gateway listener: %w", serr))
	}
	stopGateway()
	<-discoveryDone
	if s.admin != nil {
		_ = s.admin.Shutdown(sctx)
	}
	if s.ownConn {
		if derr := drain(sctx, s.nc); derr != nil {
			err = errors.Join(err, derr)
		}
	}
	s.log.Info("gateway stopped")
	return err
}

// longestTimeout is the longest any request may wait for its reply.
func (c Config) longestTimeout() time.Duration {
	longest := cmp(c.Timeout, DefaultTimeout)
	for _, r := range c.Routes {
		longest = max(longest, r.Timeout)
	}
	return longest
}

func serve(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// drain drains nc and waits until it is closed.
func drain(ctx context.Context, nc *nats.Conn) error {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return nil
	}
	select {
	case <-closed:
	case <-ctx.Done():
		nc.Close()
	}
	return nil
}

// closeAll releases what NewServer or Run acquired; safe to repeat.
func (s *Server) closeAll() {
	if s.ln != nil {
		s.ln.Close()
	}
	if s.adminLn != nil {
		s.adminLn.Close()
	}
	if s.ownConn && s.nc != nil {
		s.nc.Close()
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		s.ns = nil
	}
	if s.access != nil {
		s.access.Flush()
	}
}
