// Package metro is the Go SDK for metro workers: a worker is a set of
// ordinary http.Handlers served over NATS instead of a listening socket.
//
//	w := metro.NewWorker("users")
//	w.HandleFunc("GET /users/{id}", getUser)
//	w.HandleFunc("POST /users", createUser)
//	log.Fatal(w.Run(ctx))
//
// Each pattern (Go 1.22 ServeMux syntax) becomes one subscription in the
// queue group named after the worker ("GET /users/{id}" listens on
// users.*.GET), and one endpoint of a NATS service of that name. Handlers
// see an *http.Request with method, URL, headers, body, PathValue and a
// context that ends at the gateway's deadline; what they write becomes the
// reply. So handlers are tested with net/http/httptest as usual.
package metro

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/metropolis-dev/metro/internal/natsauth"
	"github.com/metropolis-dev/metro/internal/natsconn"
	"github.com/metropolis-dev/metro/internal/worker"
)

// Environment variables a worker reads. Credentials and TLS files come
// from NATS_CREDS (a .creds file), NATS_NKEY (an nkey seed file),
// NATS_CERT with NATS_KEY, and NATS_CA, as the nats CLI reads them.
const (
	EnvNATSURL    = "NATS_URL"
	EnvPrefix     = "METRO_PREFIX"
	EnvHealthAddr = "METRO_HEALTH_ADDR"
)

// Worker serves http.Handlers over NATS. Create one with NewWorker.
type Worker struct {
	w    *worker.Worker
	opts worker.Options
	// envErr is a credential variable that cannot be used; Run reports it.
	envErr error
}

// Option configures a Worker.
type Option func(*worker.Options)

// WithNATSURL connects to url instead of $NATS_URL.
func WithNATSURL(url string) Option { return func(o *worker.Options) { o.URL = url } }

// WithConn serves on an existing connection, which Run then leaves open.
func WithConn(nc *nats.Conn) Option { return func(o *worker.Options) { o.Conn = nc } }

// WithNATSOptions adds nats.go options (credentials, TLS) to the connection.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(o *worker.Options) { o.NATSOptions = append(o.NATSOptions, opts...) }
}

// WithPrefix sets the subject prefix instead of $METRO_PREFIX; it must
// match the gateway's.
func WithPrefix(prefix string) Option { return func(o *worker.Options) { o.Prefix = prefix } }

// WithConcurrency bounds how many handlers run at once (default 256).
func WithConcurrency(n int) Option { return func(o *worker.Options) { o.Concurrency = n } }

// WithMaxPending bounds the requests that wait for a free handler: at most
// msgs of them (default 4 × the concurrency) and bytes of request data
// (default 64 MiB, a quarter of the memory limit metro deploy gives a
// worker). A request beyond either is answered 503 with Retry-After at
// once, so its client can retry rather than wait for a timeout; 0 keeps a
// default. Requests whose Metro-Deadline passes while they wait are
// dropped unserved (the gateway has answered 504 already).
func WithMaxPending(msgs, bytes int) Option {
	return func(o *worker.Options) { o.MaxPending, o.MaxPendingBytes = msgs, bytes }
}

// WithRegisterer registers the worker's metrics (metro_worker_*: requests
// shed and expired, backlog) with reg instead of a registry of its own,
// which is served as /metrics on the health address.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(o *worker.Options) { o.Registerer = reg }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *worker.Options) { o.Logger = l } }

// WithVersion sets the semantic version announced to the service protocol.
func WithVersion(v string) Option { return func(o *worker.Options) { o.Version = v } }

// WithDescription sets the description announced in $SRV.INFO.
func WithDescription(d string) Option { return func(o *worker.Options) { o.Description = d } }

// WithHealthAddr serves /healthz and /readyz on addr instead of
// $METRO_HEALTH_ADDR (off when both are empty).
func WithHealthAddr(addr string) Option { return func(o *worker.Options) { o.HealthAddr = addr } }

// WithTracerProvider makes the worker's spans (one per handled request,
// and one per call through its Client) on tp, instead of on a provider
// that Run builds from the OTEL_* variables when they ask for export.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *worker.Options) { o.TracerProvider = tp }
}

// NewWorker returns a worker named name: its queue group and its NATS
// service name. Options override the environment.
func NewWorker(name string, opts ...Option) *Worker {
	o := worker.Options{
		Name:       name,
		URL:        os.Getenv(EnvNATSURL),
		Prefix:     os.Getenv(EnvPrefix),
		HealthAddr: os.Getenv(EnvHealthAddr),
	}
	// Replies come back where a locked bus lets this worker read them; the
	// environment's credentials go first so that options can replace them.
	auth, envErr := natsconn.AuthFromEnv(os.Getenv).Options()
	if envErr != nil {
		envErr = fmt.Errorf("metro: NATS credentials from the environment: %w", envErr)
	}
	o.NATSOptions = append([]nats.Option{natsconn.Inbox(natsauth.RoleWorker, name)}, auth...)
	for _, opt := range opts {
		opt(&o)
	}
	return &Worker{w: worker.New(o), opts: o, envErr: envErr}
}

// Handle registers h for pattern. Like http.ServeMux, it panics on an
// invalid or conflicting pattern: that is a programming error.
func (w *Worker) Handle(pattern string, h http.Handler) {
	if err := w.w.Handle(pattern, h); err != nil {
		panic(fmt.Sprintf("metro: %v", err))
	}
}

// HandleFunc registers f for pattern.
func (w *Worker) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	w.Handle(pattern, http.HandlerFunc(f))
}

// Run serves until ctx is cancelled or the process gets SIGTERM or SIGINT,
// then drains: no new requests are taken, those in flight finish and their
// replies are sent before Run returns.
//
// A NATS server that is not up yet is waited for (and logged); one that
// refuses the connection, at once or later, ends Run with the reason.
func (w *Worker) Run(ctx context.Context) error {
	if w.envErr != nil && w.opts.Conn == nil {
		return w.envErr
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	return w.w.Run(ctx)
}

// Ready is closed once the worker is subscribed and announced.
func (w *Worker) Ready() <-chan struct{} { return w.w.Ready() }
