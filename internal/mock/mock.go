// Package mock is metro mock: a stand-in for a worker that is not written
// yet or not running, answering from a recording. It hides which recorded
// exchanges belong to the worker, the routes it announces for them, how a
// request finds its recorded reply (method, path and query, then body;
// repeated requests get the recorded replies in order, and a request
// carrying a recorded request id gets that exchange's reply) and the problem
// reply that names the nearest recorded request when none matches.
package mock

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro"
	"github.com/metropolis-dev/metro/internal/recording"
	"github.com/metropolis-dev/metro/internal/replay"
	"github.com/metropolis-dev/metro/internal/subject"
)

// Stand answers requests from the recorded replies of one worker. It is
// an http.Handler, so it serves as an SDK worker's handler or in process.
type Stand struct {
	worker   string
	file     string
	byKey    map[string][]*recording.Exchange // by request key, recorded order
	all      []*recording.Exchange
	patterns []string

	mu   sync.Mutex
	next map[int]int // by the line of a matching group's first exchange: replies given
}

var _ http.Handler = (*Stand)(nil)

// New returns the stand-in for worker from the exchanges of a recording
// (read from file, which is named in replies). The worker's exchanges
// are those tap saw it answer, and those without a known worker on a
// route it answered.
func New(worker, file string, exs []recording.Exchange) (*Stand, error) {
	s := &Stand{worker: worker, file: file, byKey: map[string][]*recording.Exchange{}, next: map[int]int{}}
	var subs []string
	others := map[string]bool{}
	for i := range exs {
		ex := &exs[i]
		if ex.Worker == worker && ex.Route != "" {
			if rt, err := subject.ParsePattern(ex.Route); err == nil {
				if sub, err := rt.Subscription("x"); err == nil {
					subs = append(subs, sub)
				}
			}
		}
	}
	patterns := map[string]bool{}
	for i := range exs {
		ex := &exs[i]
		if !ex.Replied() || ex.Path == "" {
			continue
		}
		if ex.Worker != worker {
			if ex.Worker != "" || !covered(subs, ex) {
				if ex.Worker != "" {
					others[ex.Worker] = true
				}
				continue
			}
		}
		key, err := requestKey(ex.Method, ex.Path, ex.Query)
		if err != nil {
			continue
		}
		s.byKey[key] = append(s.byKey[key], ex)
		s.all = append(s.all, ex)
		if ex.Route == "" && covered(subs, ex) {
			continue // a recorded route announces it
		}
		if p := patternOf(ex); p != "" {
			patterns[p] = true
		}
	}
	if len(s.all) == 0 {
		if len(others) == 0 {
			return nil, fmt.Errorf("%s records no reply from worker %s", file, worker)
		}
		return nil, fmt.Errorf("%s records no reply from worker %s (it has replies from %s)", file, worker, strings.Join(slices.Sorted(maps.Keys(others)), ", "))
	}
	s.patterns = slices.Sorted(maps.Keys(patterns))
	return s, nil
}

func covered(subs []string, ex *recording.Exchange) bool {
	subj, err := subject.FromPath("x", ex.Method, ex.Path)
	if err != nil {
		return false
	}
	for _, sub := range subs {
		if subject.Matches(sub, subj) {
			return true
		}
	}
	return false
}

// patternOf is the route to announce for an exchange: the route it was
// recorded under, else its own path as a literal route.
func patternOf(ex *recording.Exchange) string {
	if ex.Route != "" {
		if _, err := subject.ParsePattern(ex.Route); err == nil {
			return ex.Route
		}
	}
	segs := strings.Split(strings.Trim(ex.Path, "/"), "/")
	for _, seg := range segs {
		if strings.ContainsAny(seg, "{}") {
			return "" // would read as a wildcard; the route is unknown
		}
	}
	p := ex.Method + " " + ex.Path
	if ex.Path == "/" {
		p = ex.Method + " /{$}"
	}
	rt, err := subject.ParsePattern(p)
	if err != nil || rt.HasTail() && ex.Path != "/" {
		return ""
	}
	return p
}

// Patterns are the routes the stand-in announces.
func (s *Stand) Patterns() []string { return s.patterns }

// Len is how many recorded exchanges it answers from.
func (s *Stand) Len() int { return len(s.all) }

// requestKey identifies a request up to the form of its path (the
// subject it maps to) and the order of its query parameters.
func requestKey(method, escapedPath, rawQuery string) (string, error) {
	subj, err := subject.FromPath("", method, escapedPath)
	if err != nil {
		return "", err
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return subj + "?" + rawQuery, nil
	}
	return subj + "?" + q.Encode(), nil
}

// ServeHTTP answers r with the recorded reply that matches it, or a 404
// problem that names the nearest recorded request.
func (s *Stand) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		metro.Error(w, r, http.StatusBadRequest, "reading the request body: "+err.Error())
		return
	}
	ex, detail := s.lookup(r.Method, r.URL.EscapedPath(), r.URL.RawQuery, body, metro.RequestID(r))
	if ex == nil {
		metro.Error(w, r, http.StatusNotFound, detail)
		return
	}
	if o := ex.Reply.Omitted; o != nil {
		metro.Error(w, r, http.StatusInternalServerError, fmt.Sprintf(
			"%s:%d recorded only the length and digest of this reply's streamed body (%d bytes); record it with a larger metro tap --record-max-stream to mock it", s.file, ex.Line, o.Length))
		return
	}
	for k, vs := range ex.Reply.Header {
		if http.CanonicalHeaderKey(k) == "Content-Length" {
			continue
		}
		w.Header()[k] = slices.Clone(vs)
	}
	w.WriteHeader(ex.Status)
	w.Write(ex.Reply.Body) //nolint:errcheck // the client went away; nothing to tell it
	if ex.StreamError != "" {
		// The recorded stream broke: so does this one, after the same
		// bytes, and the client sees a body cut short as it did then.
		http.NewResponseController(w).Flush() //nolint:errcheck // aborted next either way
		panic(http.ErrAbortHandler)
	}
}

func (s *Stand) lookup(method, path, query string, body []byte, requestID string) (*recording.Exchange, string) {
	target := method + " " + path
	if query != "" {
		target += "?" + query
	}
	key, err := requestKey(method, path, query)
	if err != nil {
		return nil, fmt.Sprintf("%s: %v", target, err)
	}
	cands := s.byKey[key]
	if len(cands) == 0 && method == http.MethodHead {
		key, _ = requestKey(http.MethodGet, path, query)
		cands = s.byKey[key]
	}
	var same []*recording.Exchange
	for _, c := range cands {
		if o := c.Request.Omitted; o != nil && o.Matches(body) || o == nil && sameBody(c.Request.Body, body) {
			same = append(same, c)
		}
	}
	// A replayed request carries its recorded id, and so do the calls
	// its handler makes: that picks the very exchange when two clients
	// made the same request.
	var byID []*recording.Exchange
	for _, c := range same {
		if requestID != "" && c.RequestID == requestID {
			byID = append(byID, c)
		}
	}
	if len(byID) > 0 {
		same = byID
	}
	if len(same) > 0 {
		// Replies to one request in recorded order; the last one repeats,
		// so a sequence (created, then fetched twice) plays back as it was.
		s.mu.Lock()
		n := s.next[same[0].Line]
		s.next[same[0].Line]++
		s.mu.Unlock()
		return same[min(n, len(same)-1)], ""
	}
	if len(cands) > 0 {
		return nil, fmt.Sprintf("%s records %s for worker %s, but not with this body; the nearest is %s:%d", s.file, target, s.worker, s.file, cands[0].Line)
	}
	near := s.nearest(target)
	return nil, fmt.Sprintf("%s records no %s for worker %s; the nearest recorded request is %s (%s:%d)", s.file, target, s.worker, near.Target(), s.file, near.Line)
}

func sameBody(a, b []byte) bool {
	return bytes.Equal(a, b) || replay.JSONEqual(a, b)
}

// nearest is the recorded request whose "METHOD /path?query" is the
// fewest edits away from target; the earliest on a tie.
func (s *Stand) nearest(target string) *recording.Exchange {
	best, bestD := s.all[0], -1
	for _, ex := range s.all {
		if d := distance(target, ex.Target()); bestD < 0 || d < bestD {
			best, bestD = ex, d
		}
	}
	return best
}

// distance is the Levenshtein distance of a and b in bytes, each cut to
// a length that keeps it cheap.
func distance(a, b string) int {
	const limit = 256
	a, b = a[:min(len(a), limit)], b[:min(len(b), limit)]
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Options are one metro mock run.
type Options struct {
	Worker string
	File   string
	URL    string // NATS
	Prefix string
	NATS   []nats.Option
	Logger *slog.Logger
}

// UsageError marks a recording that cannot stand in for the worker at
// all: it cannot be read, does not parse, or holds no reply of the worker
// or a route that cannot be served. Nothing was started; metro replay
// treats such a file the same way.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Run serves the stand-in for o.Worker as a metro worker (its queue group,
// its routes announced as a NATS service) until ctx ends or the process
// gets SIGTERM, then drains.
func Run(ctx context.Context, o Options) error {
	exs, err := recording.ReadFile(o.File)
	if err != nil {
		return &UsageError{err}
	}
	s, err := New(o.Worker, o.File, exs)
	if err != nil {
		return &UsageError{err}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	w := metro.NewWorker(o.Worker,
		metro.WithNATSURL(o.URL),
		metro.WithPrefix(o.Prefix),
		metro.WithNATSOptions(o.NATS...),
		metro.WithLogger(o.Logger),
		metro.WithDescription("metro mock: answers from "+o.File))
	for _, p := range s.Patterns() {
		if err := handle(w, p, s); err != nil {
			return &UsageError{err}
		}
	}
	o.Logger.Info("mock answering from a recording", "worker", o.Worker, "file", o.File, "exchanges", s.Len(), "routes", strings.Join(s.Patterns(), ", "))
	return w.Run(ctx)
}

// handle registers p, turning the SDK's panic on a bad or conflicting
// pattern (a programming error in a worker) into an error about the file.
func handle(w *metro.Worker, p string, h http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("route %q of the recording: %v", p, r)
		}
	}()
	w.Handle(p, h)
	return nil
}
