// Command revproxy is scenarios (c) and (g) of the benchmark: Go's
// httputil.ReverseProxy in front of the backend, with the Transport tuned as
// a production proxy would tune it (c), or as NewSingleHostReverseProxy
// ships it, on http.DefaultTransport (g, -default).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/metropolis-dev/metro/bench/internal/httpserve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		slog.Error("revproxy", "err", err)
		os.Exit(1)
	}
}

// run proxies to -backend until ctx ends and prints the bound address once
// ready.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("revproxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8082", "address to serve HTTP on")
	backend := fs.String("backend", "http://127.0.0.1:8081", "URL of the upstream")
	idle := fs.Int("max-idle", 256, "idle upstream connections kept (per host and in total)")
	stock := fs.Bool("default", false, "use httputil.NewSingleHostReverseProxy as it ships, untuned")
	if err := fs.Parse(args); err != nil {
		return err
	}
	target, err := url.Parse(*backend)
	if err != nil || target.Scheme == "" || target.Host == "" {
		return fmt.Errorf("parsing -backend %q: want a URL like http://127.0.0.1:8081", *backend)
	}
	if *stock {
		return httpserve.Run(ctx, *listen, httputil.NewSingleHostReverseProxy(target), stdout)
	}
	return httpserve.Run(ctx, *listen, newProxy(target, *idle), stdout)
}

// newProxy returns a ReverseProxy whose Transport keeps as many idle
// upstream connections as wrk keeps client connections. The default
// (MaxIdleConnsPerHost 2) would close and redial upstream connections under
// 64-way load, and the benchmark would measure TCP handshakes instead of the
// proxy.
func newProxy(target *url.URL, idle int) *httputil.ReverseProxy {
	tr := &http.Transport{
		Proxy: nil, // never route the benchmark through an environment proxy
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          idle,
		MaxIdleConnsPerHost:   idle,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		// Compression would add work that neither nginx nor metro does here.
		DisableCompression: true,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.SetXForwarded()
		},
		Transport: tr,
		// Without a pool ReverseProxy allocates a 32 KiB copy buffer per
		// request; a production proxy pools them, so the baseline does too.
		BufferPool: &bufferPool{},
		ErrorLog:   slog.NewLogLogger(slog.Default().Handler(), slog.LevelError),
	}
}

// bufferPool is an httputil.BufferPool over sync.Pool.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
