// Package httpserve runs the benchmark's plain HTTP servers: it hides the
// listen, announce, serve and graceful-shutdown sequence that the backend and
// the ReverseProxy scenario share.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Run serves h on addr until ctx ends, then shuts the server down and waits
// for it. Once the listener is open it writes the bound address and a
// newline to announce, so a caller that asked for port 0 learns the port and
// knows the server accepts connections.
func Run(ctx context.Context, addr string, h http.Handler, announce io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if _, err := fmt.Fprintln(announce, ln.Addr().String()); err != nil {
		_ = srv.Close()
		<-errc
		return fmt.Errorf("announcing the address: %w", err)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serving HTTP on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shutErr := srv.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving HTTP on %s: %w", ln.Addr(), err)
	}
	if shutErr != nil {
		return fmt.Errorf("shutting down HTTP on %s: %w", ln.Addr(), shutErr)
	}
	return nil
}
