// Package replay sends recorded requests again and compares each reply
// with the recorded one: status, content type and body, JSON compared as
// JSON with volatile fields left out by JSONPath (RFC 9535). It hides how
// a request is rebuilt from a recording, over NATS or through a gateway,
// and how two replies are told apart in words a person can act on.
package replay

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/theory/jsonpath"
	"github.com/theory/jsonpath/spec"

	"github.com/metropolis-dev/metro/internal/recording"
)

// Response is a reply to compare with a recorded one.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Diff is one way a reply differs from the recorded one.
type Diff struct {
	// Field is "status", "content-type", "body", or "body" and the
	// JSONPath of a value: "body $.items[0].price".
	Field string `json:"field"`
	Want  string `json:"want"`
	Got   string `json:"got"`
}

func (d Diff) String() string { return fmt.Sprintf("%s: want %s, got %s", d.Field, d.Want, d.Got) }

// Ignore holds the JSONPath queries of values left out of comparisons.
type Ignore []*jsonpath.Path

// ParseIgnore parses JSONPath queries ("$.id", "$..created_at",
// "$.items[*].id").
func ParseIgnore(queries []string) (Ignore, error) {
	var out Ignore
	for _, q := range queries {
		p, err := jsonpath.Parse(q)
		if err != nil {
			return nil, fmt.Errorf("--ignore %q: %w", q, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// absent stands for a value one side lacks.
const absent = "(absent)"

// Compare lists how got differs from the reply recorded in want; none
// means they match.
func Compare(want *recording.Exchange, got Response, ignore Ignore) []Diff {
	var diffs []Diff
	if want.Status != got.Status {
		diffs = append(diffs, Diff{Field: "status", Want: strconv.Itoa(want.Status), Got: strconv.Itoa(got.Status)})
	}
	wantCT, gotCT := want.Reply.Header.Get("Content-Type"), got.Header.Get("Content-Type")
	if mediaType(wantCT) != mediaType(gotCT) {
		diffs = append(diffs, Diff{Field: "content-type", Want: orAbsent(wantCT), Got: orAbsent(gotCT)})
	}
	if o := want.Reply.Omitted; o != nil {
		// A streamed body too large to record is known by its digest.
		if !o.Matches(got.Body) {
			sum := sha256.Sum256(got.Body)
			diffs = append(diffs, Diff{Field: "body", Want: o.String(), Got: fmt.Sprintf("%d bytes with SHA-256 %x", len(got.Body), sum)})
		}
		return diffs
	}
	return append(diffs, compareBody(want.Reply.Body, got.Body, wantCT, ignore)...)
}

// mediaType normalises a Content-Type: case and spacing of parameters
// do not matter (RFC 9110 section 8.3.1).
func mediaType(ct string) string {
	if ct == "" {
		return ""
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(ct))
	}
	return mime.FormatMediaType(mt, params)
}

// IsJSON reports whether a Content-Type is JSON: application/json or a
// +json structured syntax suffix (RFC 6839), e.g. application/problem+json.
func IsJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func orAbsent(s string) string {
	if s == "" {
		return absent
	}
	return strconv.Quote(s)
}

func compareBody(want, got []byte, ct string, ignore Ignore) []Diff {
	if IsJSON(ct) || len(ignore) > 0 {
		w, werr := decodeJSON(want)
		g, gerr := decodeJSON(got)
		if werr == nil && gerr == nil {
			c := &jsonCompare{ignored: map[string]bool{}}
			for _, q := range ignore {
				for _, doc := range []any{w, g} {
					for _, n := range q.SelectLocated(doc) {
						c.ignored[n.Path.String()] = true
					}
				}
			}
			c.walk(spec.Normalized(), "$", w, g)
			return c.diffs
		}
	}
	if bytes.Equal(want, got) {
		return nil
	}
	if utf8.Valid(want) && utf8.Valid(got) {
		wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
		for i := 0; i < max(len(wl), len(gl)); i++ {
			var a, b = absent, absent
			if i < len(wl) {
				a = strconv.Quote(clip(wl[i]))
			}
			if i < len(gl) {
				b = strconv.Quote(clip(gl[i]))
			}
			if a != b {
				return []Diff{{Field: fmt.Sprintf("body line %d", i+1), Want: a, Got: b}}
			}
		}
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	return []Diff{{Field: "body", Want: fmt.Sprintf("%d bytes", len(want)), Got: fmt.Sprintf("%d bytes, first different at byte %d", len(got), i)}}
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// JSONEqual reports whether a and b hold equal JSON values; false when
// either is not JSON.
func JSONEqual(a, b []byte) bool {
	x, err := decodeJSON(a)
	if err != nil {
		return false
	}
	y, err := decodeJSON(b)
	if err != nil {
		return false
	}
	c := &jsonCompare{}
	c.walk(spec.Normalized(), "$", x, y)
	return len(c.diffs) == 0
}

type jsonCompare struct {
	ignored map[string]bool // normalized paths (RFC 9535 section 2.7)
	diffs   []Diff
}

func (c *jsonCompare) walk(at spec.NormalizedPath, display string, w, g any) {
	if c.ignored[at.String()] {
		return
	}
	add := func(want, got string) {
		c.diffs = append(c.diffs, Diff{Field: "body " + display, Want: want, Got: got})
	}
	switch wv := w.(type) {
	case map[string]any:
		gv, ok := g.(map[string]any)
		if !ok {
			break
		}
		keys := make([]string, 0, len(wv)+len(gv))
		for k := range wv {
			keys = append(keys, k)
		}
		for k := range gv {
			if _, dup := wv[k]; !dup {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := append(slices.Clip(at), spec.Name(k))
			d := display + member(k)
			a, inW := wv[k]
			b, inG := gv[k]
			switch {
			case c.ignored[p.String()]:
			case !inG:
				c.diffs = append(c.diffs, Diff{Field: "body " + d, Want: show(a), Got: absent})
			case !inW:
				c.diffs = append(c.diffs, Diff{Field: "body " + d, Want: absent, Got: show(b)})
			default:
				c.walk(p, d, a, b)
			}
		}
		return
	case []any:
		gv, ok := g.([]any)
		if !ok {
			break
		}
		for i := 0; i < max(len(wv), len(gv)); i++ {
			p := append(slices.Clip(at), spec.Index(i))
			d := display + "[" + strconv.Itoa(i) + "]"
			switch {
			case c.ignored[p.String()]:
			case i >= len(gv):
				c.diffs = append(c.diffs, Diff{Field: "body " + d, Want: show(wv[i]), Got: absent})
			case i >= len(wv):
				c.diffs = append(c.diffs, Diff{Field: "body " + d, Want: absent, Got: show(gv[i])})
			default:
				c.walk(p, d, wv[i], gv[i])
			}
		}
		return
	case json.Number:
		if gv, ok := g.(json.Number); ok && sameNumber(wv, gv) {
			return
		}
	default:
		if reflect.DeepEqual(w, g) {
			return
		}
	}
	add(show(w), show(g))
}

// sameNumber compares JSON numbers by value: 5, 5.0 and 5e0 are one.
func sameNumber(a, b json.Number) bool {
	if a == b {
		return true
	}
	x, err1 := a.Float64()
	y, err2 := b.Float64()
	return err1 == nil && err2 == nil && x == y
}

// member is how a name is written after a path in a diff: .name when it
// is an identifier, ['name'] otherwise.
func member(k string) string {
	ident := k != ""
	for i, r := range k {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			ident = false
			break
		}
	}
	if ident {
		return "." + k
	}
	return "[" + strconv.Quote(k) + "]"
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return clip(string(b))
}

// clip shortens a value shown in a diff: the field is what matters.
func clip(s string) string {
	const max = 120
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
