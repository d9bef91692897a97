// Package call sends one HTTP-shaped request straight over NATS, as
// `metro call` does: no gateway, the same wire format (metro.Transport),
// and curl-like output. A body too large for one message streams both
// ways (PROTOCOL.md section 9): a file given with -d @file is read as it
// is sent, and a streamed reply is printed as its parts arrive.
package call

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/net/http/httpguts"

	"github.com/metropolis-dev/metro"
)

// Options are one call.
type Options struct {
	Method  string
	Path    string   // "/products/42?x=1"
	Data    string   // body; "@file" reads a file, "@-" stdin
	Headers []string // "Name: value"
	Include bool     // print the status line and headers
	Prefix  string
	Timeout time.Duration
	Stdin   io.Reader
}

// ErrUsage marks a mistake in the options (exit code 2).
var ErrUsage = errors.New("usage")

// Do sends the call on nc and writes the response to out. It returns the
// status, so the caller can fail on 5xx.
func Do(ctx context.Context, nc *nats.Conn, o Options, out io.Writer) (int, error) {
	if err := o.Validate(); err != nil {
		return 0, err
	}
	body, length, err := o.body()
	if err != nil {
		return 0, err
	}
	if c, ok := body.(io.Closer); ok {
		defer c.Close()
	}
	req, err := o.request(ctx, body)
	if err != nil {
		return 0, err
	}
	if length >= 0 {
		req.ContentLength = length
	}
	t := &metro.Transport{Conn: nc, Prefix: o.Prefix, Timeout: o.Timeout}
	defer t.CloseIdleConnections()
	resp, err := t.RoundTrip(req)
	if err != nil {
		return 0, fmt.Errorf("calling %s %s: %w", req.Method, o.Path, err)
	}
	defer resp.Body.Close()
	if o.Include {
		fmt.Fprintf(out, "%s %s\r\n", resp.Proto, resp.Status)
		for _, k := range slices.Sorted(maps.Keys(resp.Header)) {
			for _, v := range resp.Header[k] {
				fmt.Fprintf(out, "%s: %s\r\n", k, v)
			}
		}
		fmt.Fprint(out, "\r\n")
	}
	if err := copyOut(out, resp.Body); err != nil {
		return resp.StatusCode, err
	}
	return resp.StatusCode, nil
}

// copyOut prints body as it arrives: each read is written, and flushed
// when out buffers, so an event stream shows each event as the worker
// flushes it rather than when the reply ends.
func copyOut(out io.Writer, body io.Reader) error {
	flush := func() error { return nil }
	if f, ok := out.(interface{ Flush() error }); ok {
		flush = f.Flush
	}
	buf := make([]byte, 32<<10)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return fmt.Errorf("writing response: %w", err)
			}
			if err := flush(); err != nil {
				return fmt.Errorf("writing response: %w", err)
			}
		}
		switch {
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			// A streamed reply that broke: what was printed is not all.
			return fmt.Errorf("reading response: %w", rerr)
		}
	}
}

// Validate reports a mistake in o, wrapping ErrUsage, without reading a
// body or sending anything: a command refuses a bad command line before it
// looks for NATS.
func (o Options) Validate() error {
	_, err := o.request(context.Background(), nil)
	return err
}

func (o Options) request(ctx context.Context, body io.Reader) (*http.Request, error) {
	if !strings.HasPrefix(o.Path, "/") {
		return nil, fmt.Errorf("%w: path %q must start with /", ErrUsage, o.Path)
	}
	req, err := http.NewRequestWithContext(ctx, strings.ToUpper(o.Method), metro.Scheme+"://"+o.Prefix+o.Path, body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	for _, h := range o.Headers {
		k, v, err := ParseHeader(h)
		if err != nil {
			return nil, err
		}
		req.Header.Add(k, v)
	}
	return req, nil
}

// ParseHeader splits a command line's "Name: value" header. A name must be
// an RFC 9110 token and a value free of control bytes other than tab:
// anything else could not cross as a NATS header, and a line break would
// start another header. The error wraps ErrUsage.
func ParseHeader(h string) (name, value string, err error) {
	k, v, ok := strings.Cut(h, ":")
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	if !ok || !httpguts.ValidHeaderFieldName(k) || !httpguts.ValidHeaderFieldValue(v) {
		return "", "", fmt.Errorf("%w: header %q is not \"Name: value\"", ErrUsage, h)
	}
	return k, v, nil
}

// body is the request body and its length, -1 when not known (stdin).
// A file is read as it is sent, not held whole: one larger than a message
// streams to a worker that reads streamed bodies.
func (o Options) body() (io.Reader, int64, error) {
	switch {
	case o.Data == "":
		return nil, -1, nil
	case o.Data == "@-":
		return o.Stdin, -1, nil
	case strings.HasPrefix(o.Data, "@"):
		f, err := os.Open(o.Data[1:])
		if err != nil {
			return nil, 0, fmt.Errorf("reading body: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("reading body: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return f, -1, nil // a named pipe, a device: read to its end
		}
		return f, fi.Size(), nil
	}
	return strings.NewReader(o.Data), int64(len(o.Data)), nil
}
