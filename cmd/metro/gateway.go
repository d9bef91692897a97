package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/iostreams"
	"github.com/metropolis-dev/metro/internal/natsauth"
	"github.com/metropolis-dev/metro/internal/natsconn"
	"github.com/metropolis-dev/metro/internal/proxy"
	"github.com/metropolis-dev/metro/internal/tracing"
)

func init() { commands = append(commands, newGatewayCmd) }

type gatewayOptions struct {
	io         *iostreams.IOStreams
	configPath string
	listen     string
	admin      string
	natsURL    string
	prefix     string
	timeout    config.Duration
	maxBody    config.ByteSize
	maxFlight  int
	maxBodyMem config.ByteSize
	trusted    []string
	embedNATS  string
	accessLog  bool
	pprof      bool
	auth       natsconn.Auth
	changed    func(string) bool
	// Edge policies; more of them in metro.yaml.
	jwks, jwtIssuer, jwtAudience string
	corsOrigins, rateLimit       string
}

func newGatewayCmd(io *iostreams.IOStreams) *cobra.Command {
	// The flags start at the defaults so that --help shows those; a flag
	// applies only when given.
	def := config.Default()
	o := &gatewayOptions{io: io, timeout: def.Gateway.Timeout, maxBody: def.Gateway.MaxBody, maxFlight: def.Gateway.MaxInFlight, maxBodyMem: def.Gateway.MaxBodyMemory}
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the HTTP gateway alone (production entry point)",
		Long: `Run the HTTP gateway: every request is sent as a NATS request to the worker
that announced its route, and the reply is the response.

Settings come from flags, then METRO_* environment variables (NATS_URL for
the server), then metro.yaml (--config, or found upward from here), then
defaults.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.changed = cmd.Flags().Changed
			return runGateway(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.configPath, "config", "", "metro.yaml to read (default: search upward from the working directory)")
	f.StringVar(&o.listen, "listen", "", "address for HTTP clients (default :8080)")
	f.StringVar(&o.admin, "admin", "", "address for /healthz, /readyz and /metrics (default :9090)")
	f.StringVar(&o.natsURL, "nats", "", "NATS server URL (default $NATS_URL, nats.url, nats://127.0.0.1:4222)")
	f.StringVar(&o.prefix, "prefix", "", "subject prefix, e.g. api")
	f.Var(&o.timeout, "timeout", "default per-request timeout")
	f.Var(&o.maxBody, "max-body", "largest request body")
	f.IntVar(&o.maxFlight, "max-in-flight", o.maxFlight, "requests served at once; beyond it 503 with Retry-After (0: no limit)")
	f.Var(&o.maxBodyMem, "max-body-memory", "bytes of request bodies held at once; beyond it 503 with Retry-After (0: no limit)")
	f.StringSliceVar(&o.trusted, "trusted-proxies", nil, "CIDRs of proxies whose X-Forwarded-* and Forwarded headers are kept (default loopback only; none: no peer)")
	f.StringVar(&o.embedNATS, "embed-nats", "", "run a NATS server inside the gateway, listening on this host:port for workers (no host: 127.0.0.1; it has no authentication)")
	f.BoolVar(&o.accessLog, "access-log", true, "log every request to stderr")
	f.BoolVar(&o.pprof, "pprof", false, "serve Go profiles under /debug/pprof/ on the admin address, which then binds 127.0.0.1 unless --admin names a host")
	f.StringVar(&o.jwks, "jwks", "", "JWKS URL or file that bearer tokens are verified against (gateway.auth.jwt.jwks)")
	f.StringVar(&o.jwtIssuer, "jwt-issuer", "", "required token issuer (gateway.auth.jwt.issuer)")
	f.StringVar(&o.jwtAudience, "jwt-audience", "", "required token audience (gateway.auth.jwt.audience)")
	f.StringVar(&o.corsOrigins, "cors-origins", "", "comma-separated origins allowed by CORS (gateway.cors.origins)")
	f.StringVar(&o.rateLimit, "rate-limit", "", "global rate limit per client address, e.g. 100/s (gateway.rate_limit.rate)")
	f.StringVar(&o.auth.Creds, "creds", "", "NATS credentials file")
	f.StringVar(&o.auth.NKey, "nkey", "", "NATS nkey seed file")
	f.StringVar(&o.auth.TLSCert, "tls-cert", "", "client certificate for NATS TLS")
	f.StringVar(&o.auth.TLSKey, "tls-key", "", "client key for NATS TLS")
	f.StringVar(&o.auth.TLSCA, "tls-ca", "", "CA bundle to verify the NATS server")
	return cmd
}

func runGateway(cmd *cobra.Command, o *gatewayOptions) error {
	cfg, err := loadConfig(o.configPath)
	if err != nil {
		return err
	}
	g := &cfg.Gateway
	set := func(flag, key string, apply func()) {
		if o.changed(flag) {
			apply()
			cfg.SetBy(key, "--"+flag)
		}
	}
	set("listen", "gateway.listen", func() { g.Listen = o.listen })
	set("admin", "gateway.admin", func() { g.Admin = o.admin })
	set("nats", "nats.url", func() { cfg.NATS.URL = o.natsURL })
	set("prefix", "gateway.prefix", func() { g.Prefix = o.prefix })
	set("timeout", "gateway.timeout", func() { g.Timeout = o.timeout })
	set("max-body", "gateway.max_body", func() { g.MaxBody = o.maxBody })
	set("max-in-flight", "gateway.max_in_flight", func() { g.MaxInFlight = o.maxFlight })
	set("max-body-memory", "gateway.max_body_memory", func() { g.MaxBodyMemory = o.maxBodyMem })
	set("trusted-proxies", "gateway.trusted_proxies", func() {
		g.TrustedProxies = o.trusted
		if len(o.trusted) == 1 && o.trusted[0] == "none" {
			g.TrustedProxies = []string{}
		}
	})
	for _, p := range []struct{ flag, key, v string }{
		{"jwks", "gateway.auth.jwt.jwks", o.jwks},
		{"jwt-issuer", "gateway.auth.jwt.issuer", o.jwtIssuer},
		{"jwt-audience", "gateway.auth.jwt.audience", o.jwtAudience},
		{"cors-origins", "gateway.cors.origins", o.corsOrigins},
		{"rate-limit", "gateway.rate_limit.rate", o.rateLimit},
	} {
		if o.changed(p.flag) {
			if err := cfg.SetPolicy(p.key, p.v, "--"+p.flag); err != nil {
				return usageErr(err)
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return usageErr(err)
	}
	gw, err := proxy.ConfigFrom(cfg)
	if err != nil {
		return err
	}
	natsOpts, err := o.auth.Or(natsconn.AuthFromEnv(os.Getenv)).Options()
	if err != nil {
		return usageErr(err)
	}
	natsOpts = append([]nats.Option{natsconn.Inbox(natsauth.RoleGateway, "")}, natsOpts...)
	// One writer for the gateway's log and its access log, so that their
	// lines never break each other on stderr.
	logs := proxy.NewLogWriter(o.io.ErrOut)
	defer logs.Flush()
	lio := *o.io
	lio.ErrOut = logs
	log := lio.Logger(slog.LevelInfo)
	sc := proxy.ServerConfig{
		Listen:        g.Listen,
		Admin:         g.Admin,
		NATSURL:       cfg.NATS.URL,
		NATSOptions:   natsOpts,
		EmbedNATS:     o.embedNATS,
		Gateway:       gw,
		Logger:        log,
		AccessLogText: o.io.IsStderrTTY(),
		Pprof:         o.pprof,
	}
	if o.accessLog {
		sc.AccessLog = logs
	}
	log.Debug("garbage collection target", "gogc", proxy.TuneGC(os.Getenv))
	ctx := cmd.Context()
	tp, err := tracing.NewProvider(ctx, tracing.Options{Service: "gateway"})
	if err != nil {
		return err
	}
	defer func() {
		if err := tracing.Shutdown(tp); err != nil {
			log.Warn("flushing spans", "err", err)
		}
	}()
	if tp != nil {
		sc.Gateway.TracerProvider = tp
	}
	srv, err := proxy.NewServer(ctx, sc)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// loadConfig reads metro.yaml (path, or found upward; none is fine: the
// defaults) and applies the environment.
func loadConfig(path string) (*config.Config, error) {
	var cfg *config.Config
	var err error
	if path != "" {
		cfg, err = config.Load(path)
	} else {
		cfg, err = config.LoadDir(".")
		if errors.Is(err, config.ErrNotFound) {
			d := config.Default()
			cfg, err = &d, nil
		}
	}
	if err != nil {
		return nil, err
	}
	if err := cfg.ApplyEnv(os.Getenv); err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	return cfg, nil
}
