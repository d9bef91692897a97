package scaffold

import (
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/metropolis-dev/metro/internal/subject"
)

// route is what the worker templates know of one --route.
type route struct {
	Pattern string   // as written, white space normalised: "GET /invoices/{id}"
	Method  string   // "" for a route that takes every method
	Path    string   // the pattern without its method: "/invoices/{id}"
	Handler string   // the Go handler's name: "getInvoicesByID"
	Params  []string // wildcard names, in order

	// A request the route answers, for the generated tests.
	SampleMethod  string
	SamplePath    string // escaped
	SampleSubject string // SamplePath as a subject, no prefix
	SampleParams  []param
}

// SampleParamsMap is SampleParams as an object, for JavaScript.
func (r route) SampleParamsMap() map[string]string {
	m := map[string]string{}
	for _, p := range r.SampleParams {
		m[p.Name] = p.Value
	}
	return m
}

type param struct{ Name, Value string }

// parseRoutes checks patterns the way the worker will use them: each must
// be a ServeMux pattern that the subject codec can subscribe to, and
// together they must not conflict (which would make the SDK panic).
func parseRoutes(patterns []string) ([]route, error) {
	mux := http.NewServeMux()
	seen := map[string]bool{}
	var out []route
	for _, raw := range patterns {
		p := strings.TrimSpace(raw)
		if i := strings.IndexAny(p, " \t"); i >= 0 {
			p = p[:i] + " " + strings.TrimLeft(p[i:], " \t")
		}
		if p == "" || strings.IndexFunc(p, unicode.IsControl) >= 0 {
			return nil, fmt.Errorf("%w %q: want \"METHOD /path\", e.g. \"GET /users/{id}\"", ErrInvalidRoute, raw)
		}
		r, err := subject.ParsePattern(p)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrInvalidRoute, raw, unwrapSubject(err))
		}
		if _, err := r.Subscription(""); err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrInvalidRoute, raw, unwrapSubject(err))
		}
		if err := muxAccepts(mux, p); err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrInvalidRoute, raw, err)
		}
		if seen[p] {
			return nil, fmt.Errorf("%w %q: given twice", ErrInvalidRoute, raw)
		}
		seen[p] = true
		out = append(out, newRoute(p, r))
	}
	names := map[string]int{}
	for i := range out {
		n := out[i].Handler
		names[n]++
		if names[n] > 1 {
			out[i].Handler = fmt.Sprintf("%s%d", n, names[n])
		}
	}
	return out, nil
}

func unwrapSubject(err error) error {
	if e, ok := err.(*subject.Error); ok {
		return fmt.Errorf("%s", e.Reason)
	}
	return err
}

// muxAccepts registers p on mux, reporting the panic that ServeMux raises
// for an invalid pattern or one that conflicts with an earlier route.
func muxAccepts(mux *http.ServeMux, p string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%v", v)
		}
	}()
	mux.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
	return nil
}

func newRoute(pattern string, r subject.Route) route {
	rt := route{Pattern: pattern, Method: r.Method, SampleMethod: r.Method}
	rt.Path = pattern
	if r.Method != "" {
		rt.Path = strings.TrimSpace(strings.TrimPrefix(pattern, r.Method))
	}
	if rt.SampleMethod == "" {
		rt.SampleMethod = http.MethodGet
	}
	name := []string{"handle"}
	if r.Method != "" {
		name = []string{strings.ToLower(r.Method)}
	}
	var sample strings.Builder
	for _, p := range r.Parts {
		sample.WriteByte('/')
		switch p.Kind {
		case subject.Literal:
			name = append(name, words(p.Value)...)
			sample.WriteString(subject.EscapePath([]string{p.Value})[1:])
		case subject.Param:
			name = append(name, "By", camel(p.Value))
			rt.Params = append(rt.Params, p.Value)
			v := sampleValue(p.Value)
			rt.SampleParams = append(rt.SampleParams, param{p.Value, v})
			sample.WriteString(v)
		case subject.Tail:
			if p.Value == "" {
				sample.WriteString("a")
				break
			}
			name = append(name, "By", camel(p.Value))
			rt.Params = append(rt.Params, p.Value)
			rt.SampleParams = append(rt.SampleParams, param{p.Value, "a/b"})
			sample.WriteString("a/b")
		}
	}
	if len(r.Parts) == 0 {
		name = append(name, "Root")
	}
	rt.SamplePath = sample.String()
	if rt.SamplePath == "" || strings.HasSuffix(pattern, "/{$}") && rt.SamplePath != "/" {
		// {$} matches only the path with its trailing slash.
		rt.SamplePath += "/"
	}
	rt.Handler = strings.Join(name, "")
	// The sample is built from a valid pattern, so it always maps.
	rt.SampleSubject, _ = subject.FromPath("", rt.SampleMethod, rt.SamplePath)
	return rt
}

func sampleValue(name string) string {
	if l := strings.ToLower(name); l == "id" || strings.HasSuffix(l, "id") {
		return "42"
	}
	return "ada"
}

// words splits a literal path segment into capitalised identifier words:
// "user-profiles" is User, Profiles.
func words(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool {
		return !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)))
	}) {
		out = append(out, camel(f))
	}
	return out
}

// camel capitalises a word as Go names do, "id" and "url" as initialisms.
func camel(s string) string {
	switch l := strings.ToLower(s); l {
	case "id", "url", "uri", "api", "http", "json", "uuid", "ip":
		return strings.ToUpper(l)
	}
	var b strings.Builder
	upper := true
	for _, r := range s {
		switch {
		case r >= unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r)):
			upper = true
		case upper:
			b.WriteRune(unicode.ToUpper(r))
			upper = false
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
