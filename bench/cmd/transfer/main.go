// Command transfer is the client of the large-transfer scenario: it
// downloads or uploads a blob (bench/blob) through one server, or times the
// first byte of its streamed reply, and prints what it measured as one JSON
// object on stdout.
//
//	transfer -url http://127.0.0.1:8080 -op download|upload [-bytes N] [-n 1]
//	transfer -url http://127.0.0.1:8080 -op ttfb -n 40
//
// A request that fails, or a body that differs from the blob by one byte or
// in length, counts as an error (the first is also logged); the figures
// are those of the requests that succeeded. It exits non-zero only on a
// usage error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/metropolis-dev/metro/bench/blob"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		slog.Error("transfer", "err", err)
		os.Exit(2)
	}
}

// Result is what one run measured.
type Result struct {
	Op    string `json:"op"`
	Bytes int64  `json:"bytes"` // of each transfer's body
	// Seconds holds, per successful request, the time from sending it to
	// the last byte of the response (download, upload, ttfb).
	Seconds []float64 `json:"seconds"`
	// MBps holds Bytes/Seconds per successful transfer, in 10^6 bytes a
	// second (download and upload).
	MBps []float64 `json:"mbps,omitempty"`
	// TTFBms holds, per successful streamed reply, the milliseconds from
	// the request written to the first byte of the body (ttfb).
	TTFBms []float64 `json:"ttfb_ms,omitempty"`
	Errors int       `json:"errors"`
	Error  string    `json:"error,omitempty"` // the first error
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("transfer", flag.ContinueOnError)
	base := fs.String("url", "", "base URL of the server, e.g. http://127.0.0.1:8080")
	op := fs.String("op", "download", "download, upload or ttfb")
	size := fs.Int64("bytes", blob.Size, "body length of a download or an upload")
	n := fs.Int("n", 1, "requests to make, one after another")
	timeout := fs.Duration("timeout", 5*time.Minute, "time allowed for one request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *base == "" || !strings.HasPrefix(*base, "http://") {
		return fmt.Errorf("-url: want an http:// base URL, got %q", *base)
	}
	if *n < 1 || *size < 0 {
		return fmt.Errorf("-n must be at least 1 and -bytes at least 0")
	}
	c := &client{
		base: strings.TrimSuffix(*base, "/"),
		hc: &http.Client{Transport: &http.Transport{
			Proxy:              nil, // never through an environment proxy
			DisableCompression: true,
			// Big socket reads and writes, as curl and nginx use.
			ReadBufferSize:  256 << 10,
			WriteBufferSize: 256 << 10,
		}},
		timeout: *timeout,
	}
	defer c.hc.CloseIdleConnections()
	res := Result{Op: *op, Bytes: *size}
	var once func(context.Context) (secs, ttfb float64, err error)
	switch *op {
	case "download":
		once = func(ctx context.Context) (float64, float64, error) { return c.download(ctx, *size) }
	case "upload":
		once = func(ctx context.Context) (float64, float64, error) { return c.upload(ctx, *size) }
	case "ttfb":
		res.Bytes = blob.FirstBytes + blob.StreamRest
		once = c.ttfb
		// The connection is opened before the first timed request, so
		// every figure is of a request on a warm connection.
		if _, _, err := once(ctx); err != nil {
			res.record(0, 0, err)
		}
	default:
		return fmt.Errorf("-op: want download, upload or ttfb, got %q", *op)
	}
	for range *n {
		if ctx.Err() != nil {
			break
		}
		secs, ttfb, err := once(ctx)
		res.record(secs, ttfb, err)
	}
	if res.Error != "" {
		slog.Error("transfer", "op", res.Op, "url", c.base, "errors", res.Errors, "first", res.Error)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encoding the result: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

func (r *Result) record(secs, ttfb float64, err error) {
	if err != nil {
		r.Errors++
		if r.Error == "" {
			r.Error = err.Error()
		}
		return
	}
	r.Seconds = append(r.Seconds, secs)
	switch r.Op {
	case "download", "upload":
		if secs > 0 {
			r.MBps = append(r.MBps, float64(r.Bytes)/secs/1e6)
		}
	case "ttfb":
		r.TTFBms = append(r.TTFBms, ttfb*1e3)
	}
}

type client struct {
	base    string
	hc      *http.Client
	timeout time.Duration
}

// download reads size bytes of the blob and checks every one.
func (c *client) download(ctx context.Context, size int64) (float64, float64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+blob.Path+"?bytes="+strconv.FormatInt(size, 10), nil)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("GET %s: %w", blob.Path, err)
	}
	defer resp.Body.Close()
	chk := blob.NewChecker()
	_, err = io.Copy(chk, resp.Body)
	secs := time.Since(start).Seconds()
	if err != nil {
		return 0, 0, fmt.Errorf("GET %s: reading the body after %d bytes: %w", blob.Path, chk.N, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET %s: status %d", blob.Path, resp.StatusCode)
	}
	if err := chk.Err(size); err != nil {
		return 0, 0, fmt.Errorf("GET %s: %w", blob.Path, err)
	}
	return secs, 0, nil
}

// upload sends size bytes of the blob with their Content-Length and checks
// that the server counted them all.
func (c *client) upload(ctx context.Context, size int64) (float64, float64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+blob.Path, blob.NewReader(size))
	if err != nil {
		return 0, 0, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("POST %s: %w", blob.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	secs := time.Since(start).Seconds()
	if err != nil {
		return 0, 0, fmt.Errorf("POST %s: reading the answer: %w", blob.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("POST %s: status %d: %s", blob.Path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if got := strings.TrimSpace(string(body)); got != strconv.FormatInt(size, 10) {
		return 0, 0, fmt.Errorf("POST %s: the server counted %q bytes, want %d", blob.Path, got, size)
	}
	return secs, 0, nil
}

// ttfb requests the streamed reply and times its first body byte from the
// moment the request was written.
func (c *client) ttfb(ctx context.Context) (float64, float64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// Set on the transport's writing goroutine, which may still be
	// finishing when the response is in.
	var sentAt atomic.Int64
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { sentAt.Store(time.Now().UnixNano()) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+blob.StreamPath, nil)
	if err != nil {
		return 0, 0, err
	}
	asked := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("GET %s: %w", blob.StreamPath, err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64<<10)
	n, err := resp.Body.Read(buf)
	first := time.Now()
	sent := asked // should the trace not have run yet
	if ns := sentAt.Load(); ns != 0 {
		sent = time.Unix(0, ns)
	}
	if n == 0 {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, fmt.Errorf("GET %s: reading the first byte: %w", blob.StreamPath, err)
	}
	chk := blob.NewChecker()
	chk.Write(buf[:n])
	if _, err := io.Copy(chk, resp.Body); err != nil {
		return 0, 0, fmt.Errorf("GET %s: reading the body: %w", blob.StreamPath, err)
	}
	end := time.Now()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET %s: status %d", blob.StreamPath, resp.StatusCode)
	}
	if err := chk.Err(blob.FirstBytes + blob.StreamRest); err != nil {
		return 0, 0, fmt.Errorf("GET %s: %w", blob.StreamPath, err)
	}
	return end.Sub(sent).Seconds(), first.Sub(sent).Seconds(), nil
}
