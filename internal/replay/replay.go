package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/call"
	"github.com/metropolis-dev/metro/internal/recording"
	"github.com/metropolis-dev/metro/internal/subject"
	"github.com/metropolis-dev/metro/internal/wire"
)

// Options are one metro replay run.
type Options struct {
	File    string
	Filters []string // subjects with wildcards or route patterns; none: all
	Ignore  []string // JSONPath queries of volatile values
	// Gateway, when set, is the base URL requests are sent to; otherwise
	// they go over NATS on the connection Connect makes (called once the
	// options and the recording have been checked), under its prefix.
	Gateway     string
	Connect     func() (nc *nats.Conn, prefix string, err error)
	Concurrency int           // requests in flight at once (default 1: in order)
	Timeout     time.Duration // per request (default 30s)
	JSON        bool          // one result object per exchange
	// Headers ("Name: value") replace the recorded ones of that name on
	// every request: a fresh credential where the recording has only the
	// redaction marker.
	Headers []string
	Out     io.Writer // results
	Log     io.Writer // the summary line when JSON is set
}

// UsageError marks options or a recording that cannot be replayed at all.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usage(format string, args ...any) error { return &UsageError{fmt.Errorf(format, args...)} }

// Summary counts the results of a run.
type Summary struct {
	Replayed, Matched, Differed, Failed int
	Skipped                             int // without a recorded reply, or not a metro request
}

// OK reports whether every replayed exchange matched.
func (s Summary) OK() bool { return s.Differed == 0 && s.Failed == 0 }

func (s Summary) String() string {
	out := fmt.Sprintf("replayed %d exchanges: %d match, %d differ, %d failed", s.Replayed, s.Matched, s.Differed, s.Failed)
	if s.Skipped > 0 {
		out += fmt.Sprintf(" (%d skipped: no recorded reply)", s.Skipped)
	}
	return out
}

// Filter selects exchanges by subject (NATS wildcards) or route pattern.
type Filter struct {
	route  *subject.Route
	sub    string
	source string
}

// ParseFilter reads a --filter argument: a route pattern ("GET
// /users/{id}", "/files/") or a subject ("users.>").
func ParseFilter(s string) (Filter, error) {
	f := Filter{source: s}
	if strings.HasPrefix(s, "/") || strings.ContainsAny(s, " \t") {
		rt, err := subject.ParsePattern(s)
		if err != nil {
			return f, fmt.Errorf("--filter %q: %w", s, err)
		}
		// A prefix of our own keeps "/" (every path) a valid subscription.
		if f.sub, err = rt.Subscription("x"); err != nil {
			return f, fmt.Errorf("--filter %q: %w", s, err)
		}
		f.route = &rt
		return f, nil
	}
	if s == "" || strings.ContainsAny(s, " \t\r\n") || strings.Contains(s, "..") || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") {
		return f, fmt.Errorf("--filter %q is neither a subject nor a route pattern", s)
	}
	f.sub = s
	return f, nil
}

// Match reports whether ex is selected.
func (f Filter) Match(ex *recording.Exchange) bool {
	if f.route == nil {
		return subject.Matches(f.sub, ex.Subject)
	}
	if ex.Path == "" || f.route.Method != "" && f.route.Method != ex.Method && !(f.route.Method == "GET" && ex.Method == "HEAD") {
		return false
	}
	s, err := subject.FromPath("x", ex.Method, ex.Path)
	return err == nil && subject.Matches(f.sub, s)
}

// Select returns the exchanges any filter selects (all without filters).
func Select(exs []recording.Exchange, filters []Filter) []recording.Exchange {
	if len(filters) == 0 {
		return exs
	}
	var out []recording.Exchange
	for _, ex := range exs {
		for _, f := range filters {
			if f.Match(&ex) {
				out = append(out, ex)
				break
			}
		}
	}
	return out
}

// Result is the outcome of replaying one exchange: one object of --json.
type Result struct {
	Line       int     `json:"line"`
	Method     string  `json:"method"`
	Path       string  `json:"path"`
	Query      string  `json:"query,omitempty"`
	RequestID  string  `json:"request_id,omitempty"`
	Result     string  `json:"result"` // match, differs, failed, skipped
	WantStatus int     `json:"want_status,omitempty"`
	Status     int     `json:"status,omitempty"`
	LatencyMS  float64 `json:"latency_ms"`
	Diffs      []Diff  `json:"diffs,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// Run replays the recording as o says and writes results and a summary.
// A *UsageError means nothing could be replayed: bad
// options or a recording that does not parse.
func Run(ctx context.Context, o Options) (Summary, error) {
	var sum Summary
	var filters []Filter
	for _, s := range o.Filters {
		f, err := ParseFilter(s)
		if err != nil {
			return sum, &UsageError{err}
		}
		filters = append(filters, f)
	}
	ignore, err := ParseIgnore(o.Ignore)
	if err != nil {
		return sum, &UsageError{err}
	}
	exs, err := recording.ReadFile(o.File)
	if err != nil {
		return sum, &UsageError{err}
	}
	exs = Select(exs, filters)
	if len(exs) == 0 {
		return sum, usage("no exchange of %s matches --filter %s", o.File, strings.Join(o.Filters, " "))
	}
	send, err := o.sender()
	if err != nil {
		return sum, err
	}

	n := max(o.Concurrency, 1)
	results := make([]Result, len(exs))
	done := make([]chan struct{}, len(exs))
	for i := range done {
		done[i] = make(chan struct{})
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(n, len(exs)) {
		wg.Go(func() {
			for i := range work {
				results[i] = replayOne(ctx, send, &exs[i], ignore)
				close(done[i])
			}
		})
	}
	go func() {
		defer close(work)
		for i := range exs {
			select {
			case work <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	enc := json.NewEncoder(o.Out)
	enc.SetEscapeHTML(false)
	var werr error
	for i := range exs {
		select {
		case <-done[i]:
		case <-ctx.Done():
			wg.Wait()
			return sum, ctx.Err()
		}
		r := results[i]
		switch r.Result {
		case "match":
			sum.Matched++
		case "differs":
			sum.Differed++
		case "failed":
			sum.Failed++
		case "skipped":
			sum.Skipped++
		}
		if r.Result != "skipped" {
			sum.Replayed++
		}
		if werr != nil {
			continue
		}
		if o.JSON {
			werr = enc.Encode(r)
		} else {
			werr = writeText(o.Out, o.File, r)
		}
	}
	wg.Wait()
	if werr != nil {
		return sum, fmt.Errorf("writing results: %w", werr)
	}
	if o.JSON {
		if o.Log != nil {
			fmt.Fprintln(o.Log, sum)
		}
	} else if _, err := fmt.Fprintln(o.Out, sum); err != nil {
		return sum, fmt.Errorf("writing results: %w", err)
	}
	return sum, nil
}

func writeText(w io.Writer, file string, r Result) error {
	target := r.Method + " " + r.Path
	if r.Query != "" {
		target += "?" + r.Query
	}
	var err error
	switch r.Result {
	case "differs":
		_, err = fmt.Fprintf(w, "DIFF %s (%s:%d)\n", target, file, r.Line)
		for _, d := range r.Diffs {
			if err == nil {
				_, err = fmt.Fprintf(w, "  %s\n", d)
			}
		}
	case "failed":
		_, err = fmt.Fprintf(w, "FAIL %s (%s:%d): %s\n", target, file, r.Line, r.Error)
	}
	return err
}

// sendFunc sends one recorded request and returns the reply.
type sendFunc func(ctx context.Context, ex *recording.Exchange) (Response, error)

func (o Options) sender() (sendFunc, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = metro.DefaultCallTimeout
	}
	var base string
	var client *http.Client
	if o.Gateway != "" {
		u, err := url.Parse(o.Gateway)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usage("--gateway %q is not an http:// or https:// URL", o.Gateway)
		}
		base = strings.TrimSuffix(o.Gateway, "/")
		client = &http.Client{Timeout: timeout}
	} else {
		if o.Connect == nil {
			return nil, usage("no NATS connection and no --gateway")
		}
		nc, prefix, err := o.Connect()
		if err != nil {
			return nil, err
		}
		base = metro.Scheme + "://"
		client = &http.Client{Transport: &metro.Transport{Conn: nc, Prefix: prefix, Timeout: timeout}}
	}
	extra := http.Header{}
	for _, h := range o.Headers {
		k, v, err := call.ParseHeader(h)
		if err != nil {
			return nil, &UsageError{err}
		}
		extra.Add(k, v)
	}
	return func(ctx context.Context, ex *recording.Exchange) (Response, error) {
		req, err := Request(ctx, base, ex)
		if err != nil {
			return Response{}, err
		}
		for k, vs := range extra {
			req.Header[k] = vs
		}
		resp, err := client.Do(req)
		if err != nil {
			return Response{}, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return Response{}, fmt.Errorf("reading the reply: %w", err)
		}
		return Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
	}, nil
}

// Request rebuilds the recorded request against base ("http://host:port",
// "metro://", or "" for a server-side request as httptest makes them).
// Redacted headers are left out: the marker is no credential.
func Request(ctx context.Context, base string, ex *recording.Exchange) (*http.Request, error) {
	target := base + ex.Path
	if ex.Query != "" {
		target += "?" + ex.Query
	}
	req, err := http.NewRequestWithContext(ctx, ex.Method, target, bytes.NewReader(ex.Request.Body))
	if err != nil {
		return nil, fmt.Errorf("rebuilding %s %s: %w", ex.Method, ex.Path, err)
	}
	CopyHeader(req.Header, ex.Request.Header)
	SetClaims(req.Header, ex)
	// The recorded id goes again, so problem bodies, which carry it,
	// compare equal.
	if ex.RequestID != "" && req.Header.Get("X-Request-Id") == "" {
		req.Header.Set("X-Request-Id", ex.RequestID)
	}
	return req, nil
}

// SetClaims gives a replayed request the caller's verified claims, as the
// gateway passed them. Over NATS they reach the worker as recorded; a
// gateway drops them as it drops every client's Metro-* header, and
// verifies the token given with -H instead.
func SetClaims(h http.Header, ex *recording.Exchange) {
	if ex.Claims != "" {
		h[wire.HeaderClaims] = []string{ex.Claims}
	}
}

// CopyHeader copies recorded request headers, leaving out redacted
// values and those the client computes itself.
func CopyHeader(dst, src http.Header) {
	for k, vs := range src {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Host", "Connection", "Transfer-Encoding":
			continue
		}
		for _, v := range vs {
			if !recording.IsRedacted(v) {
				dst.Add(k, v)
			}
		}
	}
}

func replayOne(ctx context.Context, send sendFunc, ex *recording.Exchange, ignore Ignore) Result {
	r := Result{Line: ex.Line, Method: ex.Method, Path: ex.Path, Query: ex.Query, RequestID: ex.RequestID, WantStatus: ex.Status}
	if !ex.Replied() || ex.Path == "" {
		r.Result = "skipped"
		return r
	}
	if ex.StreamError != "" {
		// What was recorded is the part that crossed before the stream
		// broke: no whole reply to compare with.
		r.Result, r.Error = "skipped", "the recorded exchange broke mid-stream: "+ex.StreamError
		return r
	}
	if o := ex.Request.Omitted; o != nil {
		r.Result, r.Error = "failed", fmt.Sprintf("the request body was not recorded, only its length and digest (%d bytes streamed, over tap's --record-max-stream): it cannot be sent again", o.Length)
		return r
	}
	start := time.Now()
	got, err := send(ctx, ex)
	r.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		r.Result, r.Error = "failed", err.Error()
		return r
	}
	r.Status = got.Status
	r.Diffs = Compare(ex, got, ignore)
	r.Result = "match"
	if len(r.Diffs) > 0 {
		r.Result = "differs"
	}
	return r
}
