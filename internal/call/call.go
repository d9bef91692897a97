// Package call sends one HTTP-shaped request straight over NATS, as
// `metro call` does: no gateway, the same wire format (metro.Transport),
// and curl-like output.
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
	body, err := o.body()
	if err != nil {
		return 0, err
	}
	req, err := o.request(ctx, body)
	if err != nil {
		return 0, err
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
	if _, err := io.Copy(out, resp.Body); err != nil {
		return resp.StatusCode, fmt.Errorf("writing response: %w", err)
	}
	return resp.StatusCode, nil
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

func (o Options) body() (io.Reader, error) {
	switch {
	case o.Data == "":
		return nil, nil
	case o.Data == "@-":
		return o.Stdin, nil
	case strings.HasPrefix(o.Data, "@"):
		f, err := os.ReadFile(o.Data[1:])
		if err != nil {
			return nil, fmt.Errorf("reading body: %w", err)
		}
		return strings.NewReader(string(f)), nil
	}
	return strings.NewReader(o.Data), nil
}
