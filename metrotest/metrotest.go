// Package metrotest turns traffic recorded with `metro tap --record` into
// ordinary Go tests. Replay sends every recorded request to an
// http.Handler in process, one subtest per exchange, and compares each
// reply with the recorded one as `metro replay` does; Mock answers a
// worker's own calls to other workers from the same recording, as
// `metro mock` does, so the test needs no NATS and no other worker:
//
//	func TestRecorded(t *testing.T) {
//		mux := http.NewServeMux()
//		desk := orders.New(metrotest.Mock(t, "testdata/session.ndjson", "catalog"))
//		for pattern, h := range desk.Routes() {
//			mux.HandleFunc(pattern, h)
//		}
//		metrotest.Replay(t, mux, "testdata/session.ndjson",
//			metrotest.Worker("orders"), metrotest.Ignore("$.id"))
//	}
package metrotest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/mock"
	"github.com/metropolis-dev/metro/internal/recording"
	"github.com/metropolis-dev/metro/internal/replay"
	"github.com/metropolis-dev/metro/internal/wire"
)

// Option adjusts a Replay.
type Option func(*options)

type options struct {
	ignore  []string
	filters []string
	worker  string
}

// Ignore leaves the JSON values at these JSONPath queries (RFC 9535) out
// of the comparison: ids, timestamps, whatever changes from run to run.
func Ignore(jsonpaths ...string) Option {
	return func(o *options) { o.ignore = append(o.ignore, jsonpaths...) }
}

// Filter replays only the exchanges on these subjects (NATS wildcards)
// or routes ("POST /orders", "GET /orders/{id}").
func Filter(subjectsOrRoutes ...string) Option {
	return func(o *options) { o.filters = append(o.filters, subjectsOrRoutes...) }
}

// Worker replays only the exchanges that worker answered: a recording of
// a whole system also holds the calls it made to others.
func Worker(name string) Option { return func(o *options) { o.worker = name } }

// Replay replays the recording at file against h, one subtest per
// exchange with a recorded reply, named after the file, line and
// request. A reply that differs from the recorded one fails its subtest
// with one error per difference. Headers recorded as redacted are not
// sent; the recorded request id is, so problem bodies compare equal.
func Replay(t *testing.T, h http.Handler, file string, opts ...Option) {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ignore, err := replay.ParseIgnore(o.ignore)
	if err != nil {
		t.Fatalf("metrotest.Replay: %v", err)
	}
	var filters []replay.Filter
	for _, s := range o.filters {
		f, err := replay.ParseFilter(s)
		if err != nil {
			t.Fatalf("metrotest.Replay: %v", err)
		}
		filters = append(filters, f)
	}
	exs, err := recording.ReadFile(file)
	if err != nil {
		t.Fatalf("metrotest.Replay: %v", err)
	}
	n := 0
	for _, ex := range replay.Select(exs, filters) {
		if !ex.Replied() || ex.Path == "" || o.worker != "" && ex.Worker != o.worker {
			continue
		}
		if ex.StreamError != "" {
			continue // the recorded reply broke mid-stream: nothing whole to compare with
		}
		n++
		t.Run(fmt.Sprintf("%s:%d %s", filepath.Base(file), ex.Line, ex.Target()), func(t *testing.T) {
			if o := ex.Request.Omitted; o != nil {
				t.Fatalf("the request body was not recorded, only its length and digest (%d bytes streamed, over metro tap's --record-max-stream): it cannot be sent again", o.Length)
			}
			target := ex.Path
			if ex.Query != "" {
				target += "?" + ex.Query
			}
			req := httptest.NewRequestWithContext(t.Context(), ex.Method, target, bytes.NewReader(ex.Request.Body))
			replay.CopyHeader(req.Header, ex.Request.Header)
			replay.SetClaims(req.Header, &ex)
			if ex.RequestID != "" {
				req.Header.Set(wire.HeaderRequestID, ex.RequestID)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := replay.Response{Status: rec.Code, Header: rec.Result().Header, Body: rec.Body.Bytes()}
			for _, d := range replay.Compare(&ex, got, ignore) {
				t.Errorf("%s", d)
			}
		})
	}
	if n == 0 {
		t.Fatalf("metrotest.Replay: %s has no exchange to replay (worker %q, filters %q)", file, o.worker, o.filters)
	}
}

// Mock returns a client whose requests to metro:// URLs are answered
// from worker's recorded replies in file, as `metro mock` answers them:
// pass it where a worker would use its Client() to call that worker. An
// unrecorded request gets a 404 problem naming the nearest recorded one.
func Mock(t testing.TB, file, worker string) *http.Client {
	t.Helper()
	exs, err := recording.ReadFile(file)
	if err != nil {
		t.Fatalf("metrotest.Mock: %v", err)
	}
	s, err := mock.New(worker, file, exs)
	if err != nil {
		t.Fatalf("metrotest.Mock: %v", err)
	}
	return &http.Client{Transport: standIn{s}}
}

type standIn struct{ s *mock.Stand }

// errBrokenStream is what reading a mocked reply gives after its bytes
// when the recorded stream broke mid-way.
var errBrokenStream = errors.New("metrotest.Mock: the recorded reply broke mid-stream")

type brokenBody struct{ io.Reader }

func (b brokenBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == io.EOF {
		err = errBrokenStream
	}
	return n, err
}

func (brokenBody) Close() error { return nil }

func (m standIn) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	if req.URL.Scheme != metro.Scheme {
		return nil, errors.New("metrotest.Mock: only " + metro.Scheme + ":// URLs are answered, not " + req.URL.String())
	}
	target := req.URL.EscapedPath()
	if req.URL.RawQuery != "" {
		target += "?" + req.URL.RawQuery
	}
	in := httptest.NewRequestWithContext(req.Context(), req.Method, target, req.Body)
	in.Header = req.Header.Clone()
	rec := httptest.NewRecorder()
	defer func() {
		// The stand-in breaks a reply whose recorded stream broke as a
		// handler would, by aborting after the bytes that crossed: the
		// caller reads those, then an error, never a complete body.
		if r := recover(); r != nil {
			if r != http.ErrAbortHandler {
				panic(r)
			}
			resp = rec.Result()
			resp.Body = brokenBody{bytes.NewReader(rec.Body.Bytes())}
			resp.Request = req
		}
	}()
	m.s.ServeHTTP(rec, in)
	resp = rec.Result()
	resp.Request = req
	return resp, nil
}
