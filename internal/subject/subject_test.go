package subject_test

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/metropolis-dev/metro/internal/subject"
)

var update = flag.Bool("update", false, "rewrite golden files")

// sentinels are every error the codec may return; each test names the one it
// expects, so a wrong status (400 for 414, say) fails.
var sentinels = []error{subject.ErrMalformed, subject.ErrMethod, subject.ErrTooLong, subject.ErrSubject, subject.ErrPattern}

func checkErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("%s: unexpected error %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
	var e *subject.Error
	if !errors.As(err, &e) || e.Reason == "" {
		t.Fatalf("%s: error %v is not a *subject.Error with a reason", what, err)
	}
	for _, s := range sentinels {
		if s != want && errors.Is(err, s) {
			t.Fatalf("%s: error %v is also %v", what, err, s)
		}
	}
}

func TestFromPath(t *testing.T) {
	tests := []struct {
		name, prefix, method, path string
		want                       string
		err                        error
	}{
		// Shape of the subject.
		{name: "root", method: "GET", path: "/", want: "GET"},
		{name: "empty path is root", method: "GET", path: "", want: "GET"},
		{name: "two segments", method: "GET", path: "/foo/bar", want: "foo.bar.GET"},
		{name: "prefix", prefix: "api", method: "GET", path: "/foo/bar", want: "api.foo.bar.GET"},
		{name: "root with prefix", prefix: "api", method: "GET", path: "/", want: "api.GET"},
		{name: "multi-token prefix", prefix: "acme.api", method: "POST", path: "/orders", want: "acme.api.orders.POST"},
		{name: "empty segments dropped", method: "GET", path: "/foo//bar/", want: "foo.bar.GET"},
		{name: "only slashes", method: "GET", path: "////", want: "GET"},
		{name: "leading and trailing slashes", method: "PUT", path: "//foo///", want: "foo.PUT"},
		{name: "no leading slash", method: "GET", path: "foo/bar", want: "foo.bar.GET"},
		{name: "method as a segment", method: "GET", path: "/GET/POST", want: "GET.POST.GET"},

		// Bytes that stand for themselves, and the rest as upper-case %XX.
		{name: "unreserved", method: "GET", path: "/a-Z_0~9", want: "a-Z_0~9.GET"},
		{name: "dot inside a segment", method: "GET", path: "/a.b", want: "a%2Eb.GET"},
		{name: "leading dot", method: "GET", path: "/.well-known", want: "%2Ewell-known.GET"},
		{name: "three dots are a name", method: "GET", path: "/...", want: "%2E%2E%2E.GET"},
		{name: "escaped unreserved decodes", method: "GET", path: "/%41%7e", want: "A~.GET"},
		{name: "escaped slash stays in its segment", method: "GET", path: "/a%2fb", want: "a%2Fb.GET"},
		{name: "percent itself", method: "GET", path: "/100%25", want: "100%25.GET"},
		{name: "escaped percent escape", method: "GET", path: "/%2541", want: "%2541.GET"},
		{name: "star", method: "GET", path: "/*", want: "%2A.GET"},
		{name: "greater than", method: "GET", path: "/a/>", want: "a.%3E.GET"},
		{name: "dollar", method: "GET", path: "/$SYS/x", want: "%24SYS.x.GET"},
		{name: "escaped dollar", method: "GET", path: "/%24SRV", want: "%24SRV.GET"},
		{name: "escaped space", method: "GET", path: "/a%20b", want: "a%20b.GET"},
		{name: "raw space", method: "GET", path: "/a b", want: "a%20b.GET"},
		{name: "escaped tab and newline", method: "GET", path: "/%09%0a", want: "%09%0A.GET"},
		{name: "escaped NUL and DEL", method: "GET", path: "/%00%7F", want: "%00%7F.GET"},
		{name: "sub-delims", method: "GET", path: "/!$&'()*+,;=:@", want: "%21%24%26%27%28%29%2A%2B%2C%3B%3D%3A%40.GET"},
		{name: "escaped UTF-8", method: "GET", path: "/caf%c3%a9", want: "caf%C3%A9.GET"},
		{name: "raw UTF-8", method: "GET", path: "/café/日本", want: "caf%C3%A9.%E6%97%A5%E6%9C%AC.GET"},
		{name: "invalid UTF-8 byte", method: "GET", path: "/%ff%FE", want: "%FF%FE.GET"},
		{name: "plus is not space", method: "GET", path: "/a+b", want: "a%2Bb.GET"},

		// _INBOX: the reply space of every NATS client.
		{name: "inbox with a prefix", prefix: "api", method: "GET", path: "/_INBOX/x", want: "api._INBOX.x.GET"},
		{name: "inbox later", method: "GET", path: "/x/_INBOX", want: "x._INBOX.GET"},
		{name: "inbox as part of a name", method: "GET", path: "/_INBOXES", want: "_INBOXES.GET"},
		{name: "inbox", method: "GET", path: "/_INBOX", err: subject.ErrMalformed},
		{name: "inbox with more", method: "POST", path: "/_INBOX/abc/1", err: subject.ErrMalformed},
		{name: "inbox lower case", method: "GET", path: "/_inbox/x", err: subject.ErrMalformed},
		{name: "inbox mixed case", method: "GET", path: "/_InBoX", err: subject.ErrMalformed},
		{name: "inbox escaped", method: "GET", path: "/%5FINBOX", err: subject.ErrMalformed},
		{name: "inbox after empty segments", method: "GET", path: "//_INBOX", err: subject.ErrMalformed},

		// Dot segments, plain or percent-encoded.
		{name: "dot", method: "GET", path: "/.", err: subject.ErrMalformed},
		{name: "dot dot", method: "GET", path: "/..", err: subject.ErrMalformed},
		{name: "dot in the middle", method: "GET", path: "/a/./b", err: subject.ErrMalformed},
		{name: "dot dot in the middle", method: "GET", path: "/a/../b", err: subject.ErrMalformed},
		{name: "trailing dot dot", method: "GET", path: "/a/..", err: subject.ErrMalformed},
		{name: "escaped dot lower", method: "GET", path: "/%2e", err: subject.ErrMalformed},
		{name: "escaped dot upper", method: "GET", path: "/%2E", err: subject.ErrMalformed},
		{name: "escaped dot dot mixed", method: "GET", path: "/%2E%2e", err: subject.ErrMalformed},
		{name: "half escaped dot dot", method: "GET", path: "/a/.%2e/b", err: subject.ErrMalformed},
		{name: "dot dot with prefix", prefix: "api", method: "GET", path: "/..", err: subject.ErrMalformed},

		// Escapes that do not decode.
		{name: "lone percent", method: "GET", path: "/%", err: subject.ErrMalformed},
		{name: "percent at end", method: "GET", path: "/abc%", err: subject.ErrMalformed},
		{name: "one hex digit at end", method: "GET", path: "/abc%4", err: subject.ErrMalformed},
		{name: "truncated before slash", method: "GET", path: "/a%4/b", err: subject.ErrMalformed},
		{name: "non-hex digits", method: "GET", path: "/%zz", err: subject.ErrMalformed},
		{name: "non-hex low digit", method: "GET", path: "/%4g", err: subject.ErrMalformed},
		{name: "non-hex high digit", method: "GET", path: "/%g4", err: subject.ErrMalformed},
		{name: "double percent", method: "GET", path: "/%%41", err: subject.ErrMalformed},
		{name: "bad escape after a good one", method: "GET", path: "/ok/%41%", err: subject.ErrMalformed},

		// Methods: 1 to 20 upper-case letters.
		{name: "one letter method", method: "A", path: "/x", want: "x.A"},
		{name: "extension method", method: "PROPFIND", path: "/x", want: "x.PROPFIND"},
		{name: "20 letters", method: "ABCDEFGHIJKLMNOPQRST", path: "/x", want: "x.ABCDEFGHIJKLMNOPQRST"},
		{name: "21 letters", method: "ABCDEFGHIJKLMNOPQRSTU", path: "/x", err: subject.ErrMethod},
		{name: "empty method", method: "", path: "/x", err: subject.ErrMethod},
		{name: "lower case", method: "get", path: "/x", err: subject.ErrMethod},
		{name: "mixed case", method: "Get", path: "/x", err: subject.ErrMethod},
		{name: "digit", method: "GET2", path: "/x", err: subject.ErrMethod},
		{name: "hyphen", method: "M-SEARCH", path: "/x", err: subject.ErrMethod},
		{name: "wildcard method", method: "*", path: "/x", err: subject.ErrMethod},
		{name: "tail method", method: ">", path: "/x", err: subject.ErrMethod},
		{name: "dot in method", method: "GET.X", path: "/x", err: subject.ErrMethod},
		{name: "space in method", method: "GET ", path: "/x", err: subject.ErrMethod},
		{name: "non-ASCII method", method: "GÉT", path: "/x", err: subject.ErrMethod},
		{name: "method is checked first", method: "get", path: "/..", err: subject.ErrMethod},
		{name: "method before length", method: "get", path: "/" + strings.Repeat("a", 5000), err: subject.ErrMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := subject.FromPath(tt.prefix, tt.method, tt.path)
			checkErr(t, fmt.Sprintf("FromPath(%q, %q, %q)", tt.prefix, tt.method, tt.path), err, tt.err)
			if got != tt.want {
				t.Fatalf("FromPath(%q, %q, %q) = %q, want %q", tt.prefix, tt.method, tt.path, got, tt.want)
			}
			if tt.err != nil {
				return
			}
			// Every subject reads back, and re-encoding what it holds gives it again.
			method, segs, err := subject.Parse(tt.prefix, got)
			if err != nil || method != tt.method {
				t.Fatalf("Parse(%q, %q) = %q, %q, %v", tt.prefix, got, method, segs, err)
			}
			again, err := subject.FromPath(tt.prefix, method, subject.EscapePath(segs))
			if err != nil || again != got {
				t.Fatalf("FromPath(EscapePath(%q)) = %q, %v; want %q", segs, again, err, got)
			}
		})
	}
}

func TestFromPathLimits(t *testing.T) {
	// seg makes a segment of n bytes that each encode as one token byte.
	seg := func(n int) string { return strings.Repeat("a", n) }
	segs := func(n int) string { return strings.Repeat("/a", n) }
	tokens := func(n int) string { return strings.Repeat("a.", n) }
	// Each "!" becomes "%21": a path a third of the subject's length reaches it.
	nbang := (subject.MaxSubjectBytes - len(".GET")) / 3
	bangs := strings.Repeat("!", nbang)
	pad := seg(subject.MaxSubjectBytes - len(".GET") - 3*nbang)
	tests := []struct {
		name, prefix, path string
		want               string
		err                error
	}{
		{name: "path of 4096 bytes", path: strings.Repeat("/", 4095) + "a", want: "a.GET"},
		{name: "path of 4097 bytes", path: strings.Repeat("/", 4096) + "a", err: subject.ErrTooLong},
		{name: "4097 bytes of slashes", path: strings.Repeat("/", 4097), err: subject.ErrTooLong},
		{name: "path of 4097 bytes with prefix", prefix: "api", path: strings.Repeat("/", 4096) + "a", err: subject.ErrTooLong},
		{name: "4097 bytes malformed is still too long", path: "/.." + strings.Repeat("/", 4094), err: subject.ErrTooLong},
		{name: "64 segments", path: segs(64), want: tokens(64) + "GET"},
		{name: "65 segments", path: segs(65), err: subject.ErrTooLong},
		{name: "64 segments and empty ones", path: strings.Repeat("/a//", 64), want: tokens(64) + "GET"},
		{name: "64 segments with prefix", prefix: "p", path: segs(64), want: "p." + tokens(64) + "GET"},
		{name: "65 segments with prefix", prefix: "p", path: segs(65), err: subject.ErrTooLong},
		// A subject is at most MaxSubjectBytes; see its comment.
		{name: "subject of MaxSubjectBytes", path: "/" + seg(subject.MaxSubjectBytes-4), want: seg(subject.MaxSubjectBytes-4) + ".GET"},
		{name: "subject one byte over", path: "/" + seg(subject.MaxSubjectBytes-3), err: subject.ErrTooLong},
		{name: "prefix counts", prefix: "api", path: "/" + seg(subject.MaxSubjectBytes-8), want: "api." + seg(subject.MaxSubjectBytes-8) + ".GET"},
		{name: "prefix counts one over", prefix: "api", path: "/" + seg(subject.MaxSubjectBytes-7), err: subject.ErrTooLong},
		{name: "expansion to the limit", path: "/" + bangs + pad, want: strings.Repeat("%21", nbang) + pad + ".GET"},
		{name: "expansion over the limit", path: "/" + bangs + pad + "a", err: subject.ErrTooLong},
		{name: "short path, long subject", path: "/" + strings.Repeat("!", 1400), err: subject.ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := subject.FromPath(tt.prefix, "GET", tt.path)
			checkErr(t, tt.name, err, tt.err)
			if got != tt.want {
				t.Fatalf("FromPath(%q, GET, %d bytes) = %d bytes %.40q..., want %d bytes", tt.prefix, len(tt.path), len(got), got, len(tt.want))
			}
			if len(got) > subject.MaxSubjectBytes {
				t.Fatalf("subject of %d bytes", len(got))
			}
		})
	}
}

func TestAppendReusesBuffer(t *testing.T) {
	buf := []byte("kept|")
	buf, err := subject.Append(buf, "api", "GET", "/users/42")
	if err != nil || string(buf) != "kept|api.users.42.GET" {
		t.Fatalf("Append = %q, %v", buf, err)
	}
	// A failure part way through leaves dst as it was.
	for _, path := range []string{"/users/%zz", "/a/..", "/" + strings.Repeat("a", subject.MaxSubjectBytes)} {
		out, err := subject.Append([]byte("kept|"), "api", "GET", path)
		if err == nil || string(out) != "kept|" {
			t.Fatalf("Append(%.20q) = %q, %v; want dst unchanged and an error", path, out, err)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		buf, _ = subject.Append(buf[:0], "", "GET", "/users/42/orders")
	}); n != 0 {
		t.Fatalf("Append into a large enough buffer allocates %v times", n)
	}
}

// TestEveryByte encodes each of the 256 byte values, escaped (both hex cases)
// and raw, and compares with testdata/tokens.golden.
func TestEveryByte(t *testing.T) {
	var golden strings.Builder
	for b := 0; b < 256; b++ {
		c := byte(b)
		tok := subject.Token(string([]byte{c}))
		fmt.Fprintf(&golden, "%02X %s\n", b, tok)

		unreserved := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '~'
		want := fmt.Sprintf("%%%02X", b)
		if unreserved {
			want = string([]byte{c})
		}
		if tok != want {
			t.Errorf("Token(%#02x) = %q, want %q", b, tok, want)
		}
		paths := []string{fmt.Sprintf("/x%%%02X", b), fmt.Sprintf("/x%%%02x", b)}
		if c != '/' && c != '%' {
			paths = append(paths, "/x"+string([]byte{c}))
		}
		for _, p := range paths {
			got, err := subject.FromPath("", "GET", p)
			if err != nil || got != "x"+want+".GET" {
				t.Errorf("FromPath(%q) = %q, %v; want %q", p, got, err, "x"+want+".GET")
			}
		}
		seg, err := subject.DecodeToken(tok)
		if err != nil || seg != string([]byte{c}) {
			t.Errorf("DecodeToken(%q) = %q, %v", tok, seg, err)
		}
	}
	compareGolden(t, "tokens.golden", golden.String())
}

func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs from the output; run go test -update to see the change in git diff", path)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, prefix, subj string
		method             string
		segs               []string
		err                error
	}{
		{name: "root", subj: "GET", method: "GET", segs: []string{}},
		{name: "root with prefix", prefix: "api", subj: "api.GET", method: "GET", segs: []string{}},
		{name: "segments", subj: "users.42.DELETE", method: "DELETE", segs: []string{"users", "42"}},
		{name: "prefix", prefix: "api", subj: "api.users.GET", method: "GET", segs: []string{"users"}},
		{name: "multi-token prefix", prefix: "a.b", subj: "a.b.x.GET", method: "GET", segs: []string{"x"}},
		{name: "escapes", subj: "a%2Fb.caf%C3%A9.%25.%2E%2E%2E.GET", method: "GET", segs: []string{"a/b", "café", "%", "..."}},
		{name: "escaped dollar", subj: "%24SYS.GET", method: "GET", segs: []string{"$SYS"}},
		{name: "inbox with a prefix", prefix: "api", subj: "api._INBOX.x.GET", method: "GET", segs: []string{"_INBOX", "x"}},
		{name: "inbox later", subj: "x._INBOX.GET", method: "GET", segs: []string{"x", "_INBOX"}},
		{name: "64 tokens", subj: strings.Repeat("a.", 64) + "GET", method: "GET", segs: strings.Split(strings.Repeat("a", 64), "")},
		{name: "longest subject", subj: strings.Repeat("a", subject.MaxSubjectBytes-4) + ".GET", method: "GET", segs: []string{strings.Repeat("a", subject.MaxSubjectBytes-4)}},

		{name: "empty", subj: "", err: subject.ErrSubject},
		{name: "lower-case method", subj: "users.get", err: subject.ErrSubject},
		{name: "no method", subj: "users.42", err: subject.ErrSubject},
		{name: "method too long", subj: "x.ABCDEFGHIJKLMNOPQRSTU", err: subject.ErrSubject},
		{name: "trailing dot", subj: "users.GET.", err: subject.ErrSubject},
		{name: "empty token", subj: "users..GET", err: subject.ErrSubject},
		{name: "leading empty token", subj: ".GET", err: subject.ErrSubject},
		{name: "star token", subj: "users.*.GET", err: subject.ErrSubject},
		{name: "tail token", subj: "users.>", err: subject.ErrSubject},
		{name: "tail before method", subj: "users.>.GET", err: subject.ErrSubject},
		{name: "dollar token", subj: "$SRV.PING", err: subject.ErrSubject},
		{name: "dollar later", subj: "x.$x.GET", err: subject.ErrSubject},
		{name: "space", subj: "a b.GET", err: subject.ErrSubject},
		{name: "non-ASCII", subj: "café.GET", err: subject.ErrSubject},
		{name: "lower hex escape", subj: "%2e%2e%2e.GET", err: subject.ErrSubject},
		{name: "lower hex in UTF-8", subj: "caf%c3%a9.GET", err: subject.ErrSubject},
		{name: "escaped unreserved", subj: "%41.GET", err: subject.ErrSubject},
		{name: "escaped tilde", subj: "%7E.GET", err: subject.ErrSubject},
		{name: "truncated escape", subj: "a%2.GET", err: subject.ErrSubject},
		{name: "lone percent", subj: "%.GET", err: subject.ErrSubject},
		{name: "bad hex", subj: "%ZZ.GET", err: subject.ErrSubject},
		{name: "dot segment", subj: "%2E.GET", err: subject.ErrSubject},
		{name: "dot dot segment", subj: "a.%2E%2E.GET", err: subject.ErrSubject},
		{name: "inbox", subj: "_INBOX.x.GET", err: subject.ErrSubject},
		{name: "inbox lower case", subj: "_inbox.GET", err: subject.ErrSubject},
		{name: "missing prefix", prefix: "api", subj: "users.GET", err: subject.ErrSubject},
		{name: "prefix is not a whole token", prefix: "api", subj: "apiusers.GET", err: subject.ErrSubject},
		{name: "prefix alone", prefix: "api", subj: "api", err: subject.ErrSubject},
		{name: "65 tokens", subj: strings.Repeat("a.", 65) + "GET", err: subject.ErrSubject},
		{name: "subject over the limit", subj: strings.Repeat("a", subject.MaxSubjectBytes-3) + ".GET", err: subject.ErrSubject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, segs, err := subject.Parse(tt.prefix, tt.subj)
			checkErr(t, fmt.Sprintf("Parse(%q, %.60q)", tt.prefix, tt.subj), err, tt.err)
			if tt.err != nil {
				return
			}
			if method != tt.method || !reflect.DeepEqual(segs, tt.segs) {
				t.Fatalf("Parse(%q, %q) = %q, %q; want %q, %q", tt.prefix, tt.subj, method, segs, tt.method, tt.segs)
			}
			again, err := subject.FromPath(tt.prefix, method, subject.EscapePath(segs))
			if err != nil || again != tt.subj {
				t.Fatalf("FromPath(EscapePath(%q)) = %q, %v; want %q", segs, again, err, tt.subj)
			}
		})
	}
}

func TestDecodeToken(t *testing.T) {
	tests := []struct {
		tok, want string
		err       error
	}{
		{tok: "users", want: "users"},
		{tok: "%2F%25", want: "/%"},
		{tok: "%2E", want: "."}, // a token alone may be a dot; Parse refuses it as a segment
		{tok: "", err: subject.ErrSubject},
		{tok: "*", err: subject.ErrSubject},
		{tok: ">", err: subject.ErrSubject},
		{tok: "$JS", err: subject.ErrSubject},
		{tok: "a.b", err: subject.ErrSubject},
		{tok: "%2f", err: subject.ErrSubject},
		{tok: "%61", err: subject.ErrSubject},
		{tok: "%2", err: subject.ErrSubject},
	}
	for _, tt := range tests {
		got, err := subject.DecodeToken(tt.tok)
		checkErr(t, fmt.Sprintf("DecodeToken(%q)", tt.tok), err, tt.err)
		if got != tt.want {
			t.Errorf("DecodeToken(%q) = %q, want %q", tt.tok, got, tt.want)
		}
	}
}

func TestEscapePath(t *testing.T) {
	tests := []struct {
		segs []string
		want string
	}{
		{segs: nil, want: "/"},
		{segs: []string{}, want: "/"},
		{segs: []string{"users", "42"}, want: "/users/42"},
		{segs: []string{"a/b"}, want: "/a%2Fb"},
		{segs: []string{"a b", "%"}, want: "/a%20b/%25"},
		{segs: []string{"?#"}, want: "/%3F%23"},
		{segs: []string{"!$&'()*+,;=:@."}, want: "/!$&'()*+,;=:@."},
		{segs: []string{"café"}, want: "/caf%C3%A9"},
		{segs: []string{"\x00\n\x7f\xff"}, want: "/%00%0A%7F%FF"},
	}
	for _, tt := range tests {
		got := subject.EscapePath(tt.segs)
		if got != tt.want {
			t.Errorf("EscapePath(%q) = %q, want %q", tt.segs, got, tt.want)
		}
		// A worker rebuilds the request URL from it; net/url must keep it as is.
		u, err := url.Parse("http://h" + got)
		if err != nil || u.EscapedPath() != got {
			t.Errorf("url.Parse(%q).EscapedPath() = %q, %v", got, u.EscapedPath(), err)
		}
	}
}

func TestValidMethod(t *testing.T) {
	for m, want := range map[string]bool{
		"GET": true, "DELETE": true, "A": true, "ABCDEFGHIJKLMNOPQRST": true,
		"": false, "ABCDEFGHIJKLMNOPQRSTU": false, "get": false, "GEt": false, "G3T": false, "G T": false, "G_T": false,
	} {
		if got := subject.ValidMethod(m); got != want {
			t.Errorf("ValidMethod(%q) = %v, want %v", m, got, want)
		}
	}
}

func TestForeign(t *testing.T) {
	tests := []struct {
		prefix, subj string
		want         bool
	}{
		{"", "users.1.GET", false},
		{"", "GET", false},
		{"", "users.a%zz.GET", false}, // a request, if a malformed one
		{"", "_INBOX.abc.def", true},
		{"", "_inbox.x.GET", true},
		{"", "$SRV.PING", true},
		{"", "$SRV.INFO.svc", true},
		{"", "$JS.API.x.GET", true},
		{"", "users.created", true},
		{"", "users.1.get", true},
		{"api", "api.users.GET", false},
		{"api", "api._INBOX.GET", false},
		{"api", "api.x", true},
		{"api", "web.users.GET", true},
		{"api", "apiusers.GET", true},
		{"api", "api", true},
	}
	for _, tt := range tests {
		if got := subject.Foreign(tt.prefix, tt.subj); got != tt.want {
			t.Errorf("Foreign(%q, %q) = %v, want %v", tt.prefix, tt.subj, got, tt.want)
		}
	}
}
