package subject_test

import (
	"errors"
	"math/rand/v2"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/metropolis-dev/metro/internal/subject"
)

func prefixOf(withPrefix bool) string {
	if withPrefix {
		return "api"
	}
	return ""
}

// checkSubject fails unless subj is a subject a gateway may publish on.
func checkSubject(t *testing.T, prefix, method, subj string) {
	t.Helper()
	if len(subj) > subject.MaxSubjectBytes {
		t.Fatalf("subject of %d bytes", len(subj))
	}
	if !strings.HasSuffix(subj, "."+method) && subj != method {
		t.Fatalf("subject %q does not end in method %q", subj, method)
	}
	if prefix != "" && !strings.HasPrefix(subj, prefix+".") {
		t.Fatalf("subject %q lacks prefix %q", subj, prefix)
	}
	toks := strings.Split(subj, ".")
	if prefix == "" && strings.EqualFold(toks[0], "_INBOX") {
		t.Fatalf("subject %q is in the inbox space", subj)
	}
	for _, tok := range toks {
		if tok == "" || tok == "*" || tok == ">" || tok[0] == '$' {
			t.Fatalf("subject %q has token %q", subj, tok)
		}
	}
	for i := 0; i < len(subj); i++ {
		if c := subj[i]; c <= ' ' || c >= 0x7f {
			t.Fatalf("subject %q has byte %#x", subj, c)
		}
	}
}

// decodeSegments is an independent reading of an escaped path, by net/url.
func decodeSegments(path string) ([]string, bool) {
	segs := []string{}
	for _, s := range strings.Split(path, "/") {
		if s == "" {
			continue
		}
		d, err := url.PathUnescape(s)
		if err != nil {
			return nil, false
		}
		segs = append(segs, d)
	}
	return segs, true
}

func FuzzFromPath(f *testing.F) {
	for _, s := range []struct {
		method, path string
		prefix       bool
	}{
		{"GET", "/", false}, {"GET", "/users/42/orders", true}, {"POST", "/a%2Fb/caf%C3%A9", false},
		{"GET", "/%2e%2E", false}, {"GET", "/_inbox/x", false}, {"GET", "/_INBOX/x", true},
		{"DELETE", "//a//b//", false}, {"get", "/x", false}, {"GET", "/%zz", false}, {"GET", "/a%", false},
		{"GET", "/!$&'()*+,;=:@.", false}, {"GET", "/a b/\x00\xff", false}, {"GET", "/" + strings.Repeat("!", 1300), false},
		{"ABCDEFGHIJKLMNOPQRST", strings.Repeat("/a", 64), true},
	} {
		f.Add(s.method, s.path, s.prefix)
	}
	f.Fuzz(fromPathProperties)
}

func fromPathProperties(t *testing.T, method, path string, withPrefix bool) {
	{
		prefix := prefixOf(withPrefix)
		subj, err := subject.FromPath(prefix, method, path)
		if err != nil {
			if !errors.Is(err, subject.ErrMalformed) && !errors.Is(err, subject.ErrMethod) && !errors.Is(err, subject.ErrTooLong) {
				t.Fatalf("FromPath(%q, %q): error %v is not a documented one", method, path, err)
			}
			if subject.ValidMethod(method) == errors.Is(err, subject.ErrMethod) {
				t.Fatalf("FromPath(%q, %q): %v, but ValidMethod is %v", method, path, err, subject.ValidMethod(method))
			}
			return
		}
		checkSubject(t, prefix, method, subj)
		if len(path) > subject.MaxPathBytes {
			t.Fatalf("path of %d bytes accepted", len(path))
		}
		want, ok := decodeSegments(path)
		if !ok {
			t.Fatalf("FromPath accepted %q, which net/url cannot unescape", path)
		}
		m, segs, err := subject.Parse(prefix, subj)
		if err != nil {
			t.Fatalf("Parse(%q): %v", subj, err)
		}
		if m != method || !reflect.DeepEqual(segs, want) {
			t.Fatalf("Parse(%q) = %q, %q; want %q, %q", subj, m, segs, method, want)
		}
		for _, s := range segs {
			if s == "." || s == ".." {
				t.Fatalf("FromPath(%q) passed a dot segment", path)
			}
		}
		if len(segs) > subject.MaxSegments {
			t.Fatalf("FromPath(%q) passed %d segments", path, len(segs))
		}
		// Injective and reversible: the decoded segments alone give the subject.
		again, err := subject.FromPath(prefix, method, subject.EscapePath(segs))
		if err != nil || again != subj {
			t.Fatalf("FromPath(EscapePath(%q)) = %q, %v; want %q", segs, again, err, subj)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"GET", "users.42.GET", "api.users.GET", "a%2Fb.caf%C3%A9.POST", "%2e.GET", "%41.GET", "%2E%2E.GET",
		"a..GET", "*.GET", "a.>", "$SRV.PING", "_INBOX.x.GET", "api._INBOX.x.GET", "a%2.GET", "a b.GET",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(parseProperties)
}

func parseProperties(t *testing.T, subj string, withPrefix bool) {
	{
		prefix := prefixOf(withPrefix)
		method, segs, err := subject.Parse(prefix, subj)
		if err != nil {
			if !errors.Is(err, subject.ErrSubject) {
				t.Fatalf("Parse(%q): error %v is not ErrSubject", subj, err)
			}
			return
		}
		again, err := subject.FromPath(prefix, method, subject.EscapePath(segs))
		if err != nil || again != subj {
			t.Fatalf("Parse(%q) = %q, %q, but FromPath(EscapePath) = %q, %v", subj, method, segs, again, err)
		}
	}
}

// checkSubscription fails unless sub is a valid NATS subscription subject.
func checkSubscription(t *testing.T, sub string) {
	t.Helper()
	if len(sub) > subject.MaxSubjectBytes {
		t.Fatalf("subscription of %d bytes", len(sub))
	}
	toks := strings.Split(sub, ".")
	for i, tok := range toks {
		switch {
		case tok == "":
			t.Fatalf("subscription %q has an empty token", sub)
		case tok == ">" && i != len(toks)-1:
			t.Fatalf("subscription %q has > before its end", sub)
		case tok != "*" && tok != ">" && strings.ContainsAny(tok, "*>$"):
			t.Fatalf("subscription %q has token %q", sub, tok)
		}
		for j := 0; j < len(tok); j++ {
			if c := tok[j]; c <= ' ' || c >= 0x7f {
				t.Fatalf("subscription %q has byte %#x", sub, c)
			}
		}
	}
}

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{
		"GET /users/{id}", "/users/{id}", "POST /users", "GET /files/{path...}", "GET /users/", "GET /",
		"/{path...}", "GET /{$}", "/{$}", "GET /users/{$}", "GET /a%2Fb", "GET /_INBOX/x", "GET\t/x",
		"example.com/x", "/{id}/{id}", "/x{id}", "/a/{p...}/b", "/{$}/x", "/%2e", "/%zz", "GET /{a}/{b}/",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(patternProperties)
}

func patternProperties(t *testing.T, pattern string, withPrefix bool) {
	{
		prefix := prefixOf(withPrefix)
		r, err := subject.ParsePattern(pattern)
		if err != nil {
			if !errors.Is(err, subject.ErrPattern) {
				t.Fatalf("ParsePattern(%q): error %v is not ErrPattern", pattern, err)
			}
			return
		}
		if again, err := subject.ParsePattern(r.String()); err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("ParsePattern(%q).String() = %q reads back as %+v, %v", pattern, r.String(), again, err)
		}
		sub, err := r.Subscription(prefix)
		if err != nil {
			if !errors.Is(err, subject.ErrPattern) {
				t.Fatalf("Subscription(%q) of %q: error %v is not ErrPattern", prefix, pattern, err)
			}
			return
		}
		checkSubscription(t, sub)
		if prefix == "" && sub == ">" {
			t.Fatalf("%q subscribes to every subject", pattern)
		}

		// A request that fits the pattern reaches its subscription.
		method := r.Method
		if method == "" {
			method = "PATCH"
		}
		var segs []string
		for _, p := range r.Parts {
			switch p.Kind {
			case subject.Literal:
				segs = append(segs, p.Value)
			case subject.Param:
				segs = append(segs, "v")
			case subject.Tail:
				segs = append(segs, "t", "u")
			}
		}
		subj, err := subject.FromPath(prefix, method, subject.EscapePath(segs))
		if errors.Is(err, subject.ErrTooLong) {
			return // the subscription fits but a path with a tail may not
		}
		if err != nil {
			t.Fatalf("%q: request for %q: %v", pattern, segs, err)
		}
		if !subject.Matches(sub, subj) {
			t.Fatalf("%q subscribes %q, which does not receive %q", pattern, sub, subj)
		}
	}
}

// TestPropertiesOnGeneratedInputs runs the fuzz properties over inputs built
// from the pieces that matter (escapes, dots, slashes, _INBOX, wildcards), so
// every plain test run covers far more than the seed corpus, deterministically.
func TestPropertiesOnGeneratedInputs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	gen := func(alpha []string, max int) string {
		var b strings.Builder
		for n := r.IntN(max); n > 0; n-- {
			b.WriteString(alpha[r.IntN(len(alpha))])
		}
		return b.String()
	}
	pathA := []string{"/", "/", "%", "2", "e", "E", "F", "f", ".", "a", "_INBOX", "_inbox", "%5F", "!", "é", " ", "*", ">", "$", "%25", "%2e", "%2F", "%41", "z", "g"}
	methA := []string{"G", "E", "T", "g", "1", " "}
	subjA := []string{".", ".", "a", "%", "2", "E", "e", "F", "*", ">", "$", "GET", "POST", "_INBOX", "%2E", "%41", "%25", "A", "api", " "}
	patA := []string{"/", "/", "{", "}", "id", "x", "...", "$", "GET ", " ", "\t", "%", "2e", "%2F", "_INBOX", ".", "a", "{id}", "{p...}", "{$}", "get "}
	var ok [3]int
	const n = 20000
	for i := 0; i < n && !t.Failed(); i++ {
		method := "GET"
		if r.IntN(4) == 0 {
			method = gen(methA, 4)
		}
		path, subj, pattern := gen(pathA, 12), gen(subjA, 10), gen(patA, 10)
		if _, err := subject.FromPath("", method, path); err == nil {
			ok[0]++
		}
		if _, _, err := subject.Parse("", subj); err == nil {
			ok[1]++
		}
		if _, err := subject.ParsePattern(pattern); err == nil {
			ok[2]++
		}
		withPrefix := r.IntN(2) == 0
		fromPathProperties(t, method, path, withPrefix)
		parseProperties(t, subj, withPrefix)
		patternProperties(t, pattern, withPrefix)
	}
	// The generator must reach the accepting side too, or the run proves little.
	for i, c := range ok {
		if c < n/100 {
			t.Errorf("generator %d produced only %d accepted inputs of %d", i, c, n)
		}
	}
}
