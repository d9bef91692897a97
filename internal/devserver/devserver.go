// Package devserver is `metro dev`: the whole project on one machine. It
// hides an embedded nats-server, the gateway running in process, one
// child process per worker replica (each in its own process group, its
// output prefixed line by line), Go builds, file watching, reloads that
// replace a worker without dropping a request, crash restarts with
// backoff, and an orderly shutdown that leaves no process behind.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/devstate"
	"github.com/metropolis-dev/metro/internal/discovery"
	"github.com/metropolis-dev/metro/internal/policy"
)

// Options is what a metro dev run needs.
type Options struct {
	// Dir is where the search for metro.yaml starts.
	Dir string
	// Listen overrides gateway.listen for this run ("" keeps the file's).
	Listen string
	// NATSPort overrides nats.port for this run (nil keeps the file's).
	NATSPort *int
	// Out gets all output: the banner and every process's lines.
	Out   io.Writer
	Color bool
	// Getenv reads METRO_* and NATS_URL overrides (default os.Getenv).
	Getenv func(string) string
	// Grace is how long a stopped process may drain before SIGKILL
	// (default 5s).
	Grace time.Duration
	// Quiet is how long file events must pause before a rebuild
	// (default 50ms).
	Quiet time.Duration
	// ReadyTimeout bounds the wait for workers to announce themselves
	// before the banner is printed anyway (default 30s).
	ReadyTimeout time.Duration
}

// Defaults of Options.
const (
	DefaultGrace        = 5 * time.Second
	DefaultQuiet        = 50 * time.Millisecond
	DefaultReadyTimeout = 30 * time.Second
)

// Run loads the project, starts everything and serves until ctx ends;
// then it stops the gateway, the workers (SIGTERM, SIGKILL after the
// grace period, sooner on a second SIGINT/SIGTERM) and NATS, and returns
// nil. Errors are for what prevents the start: config, ports, NATS.
func Run(ctx context.Context, o Options) error {
	began := time.Now()
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	o.Grace = cmpOr(o.Grace, DefaultGrace)
	o.Quiet = cmpOr(o.Quiet, DefaultQuiet)
	o.ReadyTimeout = cmpOr(o.ReadyTimeout, DefaultReadyTimeout)

	cfg, err := loadConfig(o)
	if err != nil {
		return err
	}
	unlock, err := devstate.Lock(cfg.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	specs, err := resolveWorkers(cfg)
	if err != nil {
		return err
	}
	names := []string{"dev", "gateway"}
	for _, s := range specs {
		for i := range s.replicas {
			names = append(names, s.procName(i))
		}
	}
	con := newConsole(o.Out, o.Color, names)

	natsURL, monitor := cfg.NATS.URL, ""
	var bus *busAuth // nil: a server of the user's, with its own rules
	var devOpts []nats.Option
	if natsURL == "" {
		if bus, err = lockBus(cfg); err != nil {
			return err
		}
		for _, n := range bus.open {
			con.printf("%s declares no routes (workers.%s.routes): it may serve any route, in its own queue group", n, n)
		}
		if devOpts, err = bus.gatewayOptions(); err != nil {
			return err
		}
		ns, err := startNATS(cfg.NATS.Port, bus.conf)
		if errors.Is(err, ErrPortInUse) {
			if o.NATSPort != nil {
				return fmt.Errorf("--nats-port %d: port in use (another metro dev or nats-server?); try --nats-port 0 for a free one", cfg.NATS.Port)
			}
			return cfg.Errorf("nats.port", "port %d is in use (another metro dev or nats-server?); change nats.port, or run with --nats-port 0 for a free one", cfg.NATS.Port)
		}
		if err != nil {
			return err
		}
		defer func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		}()
		natsURL, monitor = ns.ClientURL(), monitorURL(ns)
	}
	tr, err := startTracing(ctx, o.Getenv, con.printf)
	if err != nil {
		return err
	}
	defer func() {
		if err := tr.close(); err != nil {
			con.printf("%v", err)
		}
	}()
	for i := range specs {
		specs[i].env = append(tr.workerEnv(specs[i].name, o.Getenv), specs[i].env...)
		specs[i].env = append(specs[i].env, "NATS_URL="+natsURL, "METRO_PREFIX="+cfg.Gateway.Prefix)
		if bus != nil {
			specs[i].env = append(specs[i].env, bus.workerEnv(specs[i].name)...)
		}
	}

	nc, err := nats.Connect(natsURL, append([]nats.Option{nats.Name("metro dev"), nats.MaxReconnects(-1), nats.Timeout(5 * time.Second)}, devOpts...)...)
	if err != nil {
		return fmt.Errorf("connecting to NATS at %s: %w", natsURL, err)
	}
	defer nc.Close()

	gw, err := startGateway(ctx, nc, cfg, o.Listen != "", con, tr.tp)
	if err != nil {
		return err
	}
	gwCtx, gwStop := context.WithCancel(context.WithoutCancel(ctx))
	defer gwStop()
	gwDone := make(chan error, 1)
	go func() { gwDone <- gw.Run(gwCtx) }()

	d := &session{
		cfg:     cfg,
		con:     con,
		nc:      nc,
		natsURL: natsURL,
		monitor: monitor,
		gwURL:   httpURL(addrString(gw.Addr())),
		bus:     bus,
		admURL:  httpURL(addrString(gw.AdminAddr())),
		gwAll:   everyInterface(gw.Addr()),
		admAll:  everyInterface(gw.AdminAddr()),
		trcURL:  tr.col.URL(),
		force:   make(chan struct{}),

		gatewayRoutes: gw.Gateway().Routes,
		reload:        func() (*config.Config, error) { return loadConfig(o) },
		setPolicies:   gw.Gateway().SetPolicies,
	}
	wctx, wstop := context.WithCancel(context.WithoutCancel(ctx))
	defer wstop()
	var wg sync.WaitGroup
	for _, s := range specs {
		r := newRunner(s, con, pinger{nc}, o.Grace, o.Quiet, d.force, d.writeState)
		d.runners = append(d.runners, r)
	}
	for _, r := range d.runners {
		wg.Go(func() { r.run(wctx) })
	}
	wg.Go(func() { d.announce(wctx, began, o.ReadyTimeout) })
	wg.Go(func() { d.watchConfig(wctx, o.Quiet) })

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-gwDone:
		gwDone <- nil // for the shutdown below
		if runErr == nil {
			runErr = errors.New("the gateway stopped")
		}
	}

	// Shutdown. A second signal cuts every grace period short.
	con.printf("stopping (Ctrl-C again to force)")
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-sigs:
			con.printf("forcing")
			close(d.force)
		case <-stopped:
		}
	}()
	gwStop()
	select {
	case <-gwDone:
	case <-d.force:
	}
	wstop()
	wg.Wait()
	if err := devstate.Remove(cfg.Dir); err != nil {
		con.printf("%v", err)
	}
	if runErr != nil {
		return fmt.Errorf("running the gateway: %w", runErr)
	}
	con.printf("stopped")
	return nil
}

func cmpOr(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

// loadConfig reads metro.yaml and applies the environment and flags.
func loadConfig(o Options) (*config.Config, error) {
	cfg, err := config.LoadDir(o.Dir)
	if err != nil {
		return nil, err
	}
	if err := cfg.ApplyEnv(o.Getenv); err != nil {
		return nil, err
	}
	if o.Listen != "" {
		cfg.Gateway.Listen = o.Listen
	}
	if o.NATSPort != nil {
		if p := *o.NATSPort; p < 0 || p > 65535 {
			return nil, fmt.Errorf("--nats-port %d is not a port (0 to 65535; 0 picks a free one)", p)
		}
		cfg.NATS.Port = *o.NATSPort
	}
	if len(cfg.Workers) == 0 {
		return nil, cfg.Errorf("workers", "no workers to run (add one with metro new worker NAME)")
	}
	return cfg, nil
}

// resolveWorkers turns the workers of cfg into specs, sorted by name.
func resolveWorkers(cfg *config.Config) ([]workerSpec, error) {
	var specs []workerSpec
	for _, name := range slices.Sorted(maps.Keys(cfg.Workers)) {
		w := cfg.Workers[name]
		if w.Mock != "" {
			s, err := mockSpec(cfg, name, w)
			if err != nil {
				return nil, err
			}
			specs = append(specs, s)
			continue
		}
		s := workerSpec{name: name, replicas: max(w.Replicas, 1), run: w.Run, project: cfg.Dir}
		abs := func(p string) string {
			if filepath.IsAbs(p) {
				return p
			}
			return filepath.Join(cfg.Dir, p)
		}
		key := "workers." + name
		if w.Path != "" {
			s.pkg = abs(w.Path)
			if fi, err := os.Stat(s.pkg); err != nil || !fi.IsDir() {
				return nil, cfg.Errorf(key+".path", "%s is not a directory", w.Path)
			}
			s.dir = s.pkg
			s.bin = filepath.Join(cfg.Dir, ".metro", "bin", name)
		} else {
			s.dir = cfg.Dir
		}
		if w.Dir != "" {
			s.dir = abs(w.Dir)
		}
		for _, k := range slices.Sorted(maps.Keys(w.Env)) {
			s.env = append(s.env, k+"="+w.Env[k])
		}
		s.watch = watchSet{tree: s.dir, globs: w.Watch}
		if s.pkg != "" {
			s.watch.tree = s.pkg
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// session is the state shared by a run's parts once everything started.
type session struct {
	cfg     *config.Config
	con     *console
	nc      *nats.Conn
	natsURL string
	monitor string
	gwURL   string
	trcURL  string
	admURL  string
	// gwAll and admAll: the listener binds every interface, so it is
	// reachable beyond this machine, whatever its URL says.
	gwAll, admAll bool
	runners       []*runner
	force         chan struct{}
	bus           *busAuth // nil when the server is not metro dev's
	// gatewayRoutes lists the patterns in the gateway's route table.
	gatewayRoutes func() []string
	// reload reads metro.yaml again; setPolicies installs the gateway's
	// edge policies (see applyConfig).
	reload      func() (*config.Config, error)
	setPolicies func(*policy.Set) error
	applied     *config.Config // the config last applied; only watchConfig uses it

	mu    sync.Mutex
	ready bool // the state file is written
}

// writeState rewrites .metro/dev.json once the session is ready, so the
// pids in it follow reloads and restarts.
func (d *session) writeState() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.ready {
		return
	}
	st := devstate.State{
		NATSURL:    d.natsURL,
		GatewayURL: d.gwURL,
		TraceURL:   d.trcURL,
		AdminURL:   d.admURL,
		Prefix:     d.cfg.Gateway.Prefix,
		PID:        os.Getpid(),
		Workers:    map[string][]int{},
	}
	for _, r := range d.runners {
		st.Workers[r.spec.name] = r.pids()
	}
	if d.bus != nil {
		st.NKeys = d.bus.toolNKeys()
	}
	if err := devstate.Write(d.cfg.Dir, st); err != nil {
		d.con.printf("%v", err)
	}
}

// announce waits until every worker that built has announced its
// service (all replicas), then prints the banner and writes the state file.
func (d *session) announce(ctx context.Context, began time.Time, timeout time.Duration) {
	for _, r := range d.runners {
		select {
		case <-r.started:
		case <-ctx.Done():
			return
		}
	}
	want := map[string]int{}
	for _, r := range d.runners {
		if r.state.Load() == "running" {
			want[r.spec.name] = r.spec.replicas
		}
	}
	seen := map[string]int{}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	err := pinger{d.nc}.rounds(wctx, "$SRV.PING", func(round map[string]string) bool {
		clear(seen)
		for _, name := range round {
			seen[name]++
		}
		for name, n := range want {
			if seen[name] < n {
				return false
			}
		}
		return true
	})
	cancel()
	if ctx.Err() != nil {
		return
	}
	var notes []string
	for _, r := range d.runners {
		name := r.spec.name
		switch {
		case r.state.Load() == "build failed":
			notes = append(notes, name+": build failed; fix it and save to retry")
		case err != nil && r.crashing():
			notes = append(notes, name+": keeps exiting; see its output above")
		case err != nil && seen[name] == 0 && r.spec.pkg == "":
			// A run: worker may be a plain NATS subscriber; a Go worker
			// that is slow to announce itself is still waited for on
			// every reload, or reloads would drop requests.
			r.registers.Store(false)
			notes = append(notes, fmt.Sprintf("%s: announced no service named %q within %s; it runs, and reloads without waiting for one", name, name, timeout))
		case err != nil && seen[name] == 0:
			notes = append(notes, fmt.Sprintf("%s: announced no service named %q within %s (does it call metro.NewWorker(%q)?)", name, name, timeout, name))
		case err != nil && seen[name] < r.spec.replicas:
			notes = append(notes, fmt.Sprintf("%s: %d of %d replicas announced themselves", name, seen[name], r.spec.replicas))
		}
	}
	announced := map[string]int{}
	for name := range want {
		if seen[name] > 0 {
			announced[name] = seen[name]
		}
	}
	svcs := d.collect(ctx, announced, timeout)
	if ctx.Err() != nil {
		return
	}
	d.awaitGateway(ctx, svcs, timeout)
	d.con.raw(banner(bannerInfo{
		elapsed: time.Since(began),
		gateway: d.gwURL,
		admin:   d.admURL,
		gwAll:   d.gwAll,
		admAll:  d.admAll,
		nats:    d.natsURL,
		monitor: d.monitor,
		rows:    routeRows(svcs),
		notes:   notes,
	}))
	d.mu.Lock()
	d.ready = true
	d.mu.Unlock()
	d.writeState()
}

// collect asks the services for their routes until every worker of want
// that announced itself has answered (a busy machine may take longer than
// one round), or until timeout.
func (d *session) collect(ctx context.Context, want map[string]int, timeout time.Duration) []discovery.Service {
	deadline := time.Now().Add(timeout)
	for {
		svcs, _ := discovery.Collect(ctx, d.nc, d.cfg.Gateway.Prefix, 250*time.Millisecond)
		got := map[string]bool{}
		for _, s := range svcs {
			got[s.Name] = true
		}
		all := true
		for name := range want {
			if !got[name] {
				all = false
			}
		}
		if all || ctx.Err() != nil || time.Now().After(deadline) {
			return svcs
		}
	}
}

// awaitGateway waits until the gateway's route table holds every route
// the services announce: it learns them a moment after they register,
// and "ready" should mean that requests are answered.
func (d *session) awaitGateway(ctx context.Context, svcs []discovery.Service, timeout time.Duration) {
	want := map[string]bool{}
	for _, s := range svcs {
		for _, r := range s.Routes {
			want[r.Pattern] = true
		}
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(timeout)
	for {
		have := map[string]bool{}
		for _, p := range d.gatewayRoutes() {
			have[p] = true
		}
		missing := false
		for p := range want {
			if !have[p] {
				missing = true
				break
			}
		}
		if !missing {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			return
		case <-t.C:
		}
	}
}

// watchConfig applies a changed metro.yaml: the gateway's policies at
// once, and for the rest it tells the user to restart (see applyConfig).
func (d *session) watchConfig(ctx context.Context, quiet time.Duration) {
	if d.cfg.Path == "" {
		return
	}
	abs, err := filepath.Abs(d.cfg.Path)
	if err != nil {
		return
	}
	w, err := newWatcher(watchSet{files: []string{abs}})
	if err != nil {
		d.con.printf("not watching %s: %v", d.cfg.Path, err)
		return
	}
	changes := make(chan time.Time, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { w.run(ctx, quiet, changes, func(error) {}) })
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
			d.applyConfig()
		}
	}
}

// bannerInfo is what the ready banner shows.
type bannerInfo struct {
	elapsed                       time.Duration
	gateway, admin, nats, monitor string
	gwAll, admAll                 bool // see session
	rows                          []RouteRow
	notes                         []string
}

func banner(b bannerInfo) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n  metro dev ready in %s\n\n", fmtDuration(b.elapsed))
	fmt.Fprintf(&sb, "  gateway  %s%s\n", b.gateway, reach(b.gwAll))
	if b.admin != "" {
		fmt.Fprintf(&sb, "  admin    %s%s\n", b.admin, reach(b.admAll))
	}
	fmt.Fprintf(&sb, "  nats     %s", b.nats)
	if b.monitor != "" {
		fmt.Fprintf(&sb, "  (monitoring %s)", b.monitor)
	}
	sb.WriteString("\n\n")
	if len(b.rows) == 0 {
		sb.WriteString("  no routes announced yet\n")
	} else {
		writeRouteTable(&sb, b.rows, "  ", false)
	}
	if len(b.notes) > 0 {
		sb.WriteString("\n")
		sort.Strings(b.notes)
		for _, n := range b.notes {
			fmt.Fprintf(&sb, "  ! %s\n", n)
		}
	}
	sb.WriteString("\n")
	return sb.String()
}

// reach says that a listener whose URL reads localhost is open wider.
func reach(all bool) string {
	if all {
		return "  (listening on every interface)"
	}
	return ""
}

// everyInterface reports whether a is bound to the unspecified address.
func everyInterface(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsUnspecified()
}

// httpURL turns a listen address into a URL a browser can open.
func httpURL(addr string) string {
	if addr == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// newLogger writes text logs to w, which prefixes each line.
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}
