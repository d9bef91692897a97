package tracing

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Forward passes every export a Collector accepts on to another OTLP/HTTP
// receiver: metro dev keeps traces for `metro trace` and still sends the
// workers' spans to the backend the OTEL_* variables name.
type Forward struct {
	URL    string      // the receiver's traces URL
	Header http.Header // sent with every export (OTEL_EXPORTER_OTLP_HEADERS)
	// OnError hears of an export the receiver did not take.
	OnError func(error)
	Client  *http.Client // default: http.DefaultClient
}

// forwardTimeout bounds one forwarded export.
const forwardTimeout = 10 * time.Second

func (f *Forward) send(ctx context.Context, body []byte, contentType string) {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	err := f.post(ctx, body, contentType)
	if err != nil && f.OnError != nil {
		f.OnError(errorf("forwarding spans to %s: %w", f.URL, err))
	}
}

func (f *Forward) post(ctx context.Context, body []byte, contentType string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range f.Header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", contentType)
	c := f.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// ForwardFromEnv is where the OTEL_* variables send traces, as a Forward,
// or nil when they name no endpoint.
func ForwardFromEnv(getenv func(string) string) (*Forward, error) {
	if !Enabled(getenv) {
		return nil, nil
	}
	u := getenv(EnvTracesEndpoint)
	if u == "" {
		base := getenv(EnvEndpoint)
		if base == "" {
			base = "http://localhost:4318"
		}
		u = strings.TrimSuffix(base, "/") + TracesPath
	}
	if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return nil, errorf("%q is not an http:// or https:// OTLP endpoint", u)
	}
	h := http.Header{}
	for _, env := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		for _, kv := range strings.Split(getenv(env), ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			k = strings.TrimSpace(k)
			if uv, err := url.QueryUnescape(strings.TrimSpace(v)); err == nil && k != "" {
				h.Set(k, uv)
			}
		}
	}
	return &Forward{URL: u, Header: h}, nil
}
