package subject_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/metropolis-dev/metro/internal/subject"
)

func TestParsePattern(t *testing.T) {
	lit := func(v string) subject.Part { return subject.Part{Kind: subject.Literal, Value: v} }
	param := func(v string) subject.Part { return subject.Part{Kind: subject.Param, Value: v} }
	tail := func(v string) subject.Part { return subject.Part{Kind: subject.Tail, Value: v} }
	const noSub = "!" // the subscription is refused with ErrPattern
	tests := []struct {
		pattern string
		method  string
		parts   []subject.Part
		str     string // Route.String; "" means the pattern itself
		sub     string // Subscription("")
		subAPI  string // Subscription("api")
		err     error
	}{
		{pattern: "GET /users/{id}", method: "GET", parts: []subject.Part{lit("users"), param("id")}, sub: "users.*.GET", subAPI: "api.users.*.GET"},
		{pattern: "POST /users", method: "POST", parts: []subject.Part{lit("users")}, sub: "users.POST", subAPI: "api.users.POST"},
		{pattern: "/users/{id}", parts: []subject.Part{lit("users"), param("id")}, sub: "users.*.*", subAPI: "api.users.*.*"},
		{pattern: "GET /files/{path...}", method: "GET", parts: []subject.Part{lit("files"), tail("path")}, sub: "files.>", subAPI: "api.files.>"},
		{pattern: "GET /users/", method: "GET", parts: []subject.Part{lit("users"), tail("")}, sub: "users.>", subAPI: "api.users.>"},
		{pattern: "GET /users/{id}/", method: "GET", parts: []subject.Part{lit("users"), param("id"), tail("")}, sub: "users.*.>", subAPI: "api.users.*.>"},
		{pattern: "GET /a/{x}/b/{y}", method: "GET", parts: []subject.Part{lit("a"), param("x"), lit("b"), param("y")}, sub: "a.*.b.*.GET", subAPI: "api.a.*.b.*.GET"},
		// A leading wildcard needs a prefix: it would catch $SRV.* and _INBOX.*.
		{pattern: "GET /{id}", method: "GET", parts: []subject.Part{param("id")}, sub: noSub, subAPI: "api.*.GET"},
		{pattern: "GET /{tenant}/{path...}", method: "GET", parts: []subject.Part{param("tenant"), tail("path")}, sub: noSub, subAPI: "api.*.>"},
		{pattern: "/{verb}", parts: []subject.Part{param("verb")}, sub: noSub, subAPI: "api.*.*"},
		{pattern: "PING /{x}/{y}", method: "PING", parts: []subject.Part{param("x"), param("y")}, sub: noSub, subAPI: "api.*.*.PING"},
		// The root: "/" is every path, as in ServeMux; "/{$}" is the root alone.
		{pattern: "GET /", method: "GET", parts: []subject.Part{tail("")}, sub: noSub, subAPI: "api.>"},
		{pattern: "/", parts: []subject.Part{tail("")}, sub: noSub, subAPI: "api.>"},
		{pattern: "/{path...}", parts: []subject.Part{tail("path")}, sub: noSub, subAPI: "api.>"},
		{pattern: "GET /{$}", method: "GET", sub: "GET", subAPI: "api.GET"},
		{pattern: "/{$}", sub: "*", subAPI: "api.*"},
		{pattern: "GET /users/{$}", method: "GET", parts: []subject.Part{lit("users")}, str: "GET /users", sub: "users.GET", subAPI: "api.users.GET"},
		// Literals are decoded and encoded as tokens.
		{pattern: "GET /a%2Fb", method: "GET", parts: []subject.Part{lit("a/b")}, sub: "a%2Fb.GET", subAPI: "api.a%2Fb.GET"},
		{pattern: "GET /v1.2/x", method: "GET", parts: []subject.Part{lit("v1.2"), lit("x")}, sub: "v1%2E2.x.GET", subAPI: "api.v1%2E2.x.GET"},
		{pattern: "GET /caf%c3%a9", method: "GET", parts: []subject.Part{lit("café")}, str: "GET /caf%C3%A9", sub: "caf%C3%A9.GET", subAPI: "api.caf%C3%A9.GET"},
		{pattern: "GET /%7Bid%7D", method: "GET", parts: []subject.Part{lit("{id}")}, sub: "%7Bid%7D.GET", subAPI: "api.%7Bid%7D.GET"},
		{pattern: "GET /*/>", method: "GET", parts: []subject.Part{lit("*"), lit(">")}, str: "GET /*/%3E", sub: "%2A.%3E.GET", subAPI: "api.%2A.%3E.GET"},
		// Separators between method and path.
		{pattern: "GET\t/x", method: "GET", parts: []subject.Part{lit("x")}, str: "GET /x", sub: "x.GET", subAPI: "api.x.GET"},
		{pattern: "GET   /x", method: "GET", parts: []subject.Part{lit("x")}, str: "GET /x", sub: "x.GET", subAPI: "api.x.GET"},
		// _INBOX can only be subscribed below a prefix.
		{pattern: "GET /_INBOX/x", method: "GET", parts: []subject.Part{lit("_INBOX"), lit("x")}, sub: noSub, subAPI: "api._INBOX.x.GET"},
		{pattern: "/_inbox/{id}", parts: []subject.Part{lit("_inbox"), param("id")}, sub: noSub, subAPI: "api._inbox.*.*"},
		{pattern: "GET /x/_INBOX", method: "GET", parts: []subject.Part{lit("x"), lit("_INBOX")}, sub: "x._INBOX.GET", subAPI: "api.x._INBOX.GET"},
		// Limits.
		{pattern: "GET " + strings.Repeat("/a", 64), method: "GET", parts: repeatPart(lit("a"), 64), sub: strings.Repeat("a.", 64) + "GET", subAPI: "api." + strings.Repeat("a.", 64) + "GET"},
		{pattern: "GET " + strings.Repeat("/a", 64) + "/", method: "GET", parts: append(repeatPart(lit("a"), 64), tail("")), sub: strings.Repeat("a.", 64) + ">", subAPI: "api." + strings.Repeat("a.", 64) + ">"},
		{pattern: "GET " + strings.Repeat("/a", 65), err: subject.ErrPattern},
		{pattern: "GET /" + strings.Repeat("a", subject.MaxSubjectBytes-4), method: "GET", parts: []subject.Part{lit(strings.Repeat("a", subject.MaxSubjectBytes-4))}, sub: strings.Repeat("a", subject.MaxSubjectBytes-4) + ".GET", subAPI: noSub},

		{pattern: "", err: subject.ErrPattern},
		{pattern: "GET", err: subject.ErrPattern},
		{pattern: "users", err: subject.ErrPattern},
		{pattern: "example.com/x", err: subject.ErrPattern},
		{pattern: "GET example.com/x", err: subject.ErrPattern},
		{pattern: "GET {host}/x", err: subject.ErrPattern},
		{pattern: "get /x", err: subject.ErrPattern},
		{pattern: "M-SEARCH /x", err: subject.ErrPattern},
		{pattern: " /x", err: subject.ErrPattern},
		{pattern: "/a//b", err: subject.ErrPattern},
		{pattern: "//", err: subject.ErrPattern},
		{pattern: "/{}", err: subject.ErrPattern},
		{pattern: "/{...}", err: subject.ErrPattern},
		{pattern: "/{1id}", err: subject.ErrPattern},
		{pattern: "/{a-b}", err: subject.ErrPattern},
		{pattern: "/{a.b}", err: subject.ErrPattern},
		{pattern: "/{a b}", err: subject.ErrPattern},
		{pattern: "/{id", err: subject.ErrPattern},
		{pattern: "/id}", err: subject.ErrPattern},
		{pattern: "/x{id}", err: subject.ErrPattern},
		{pattern: "/{id}x", err: subject.ErrPattern},
		{pattern: "/{a}{b}", err: subject.ErrPattern},
		{pattern: "/a/{path...}/b", err: subject.ErrPattern},
		{pattern: "/{path...}/", err: subject.ErrPattern},
		{pattern: "/{$}/x", err: subject.ErrPattern},
		{pattern: "/a/{$}/", err: subject.ErrPattern},
		{pattern: "/{id}/{id}", err: subject.ErrPattern},
		{pattern: "/{a}/{a...}", err: subject.ErrPattern},
		{pattern: "/.", err: subject.ErrPattern},
		{pattern: "/a/..", err: subject.ErrPattern},
		{pattern: "/%2e%2E", err: subject.ErrPattern},
		{pattern: "/%zz", err: subject.ErrPattern},
		{pattern: "/a%", err: subject.ErrPattern},
		{pattern: "/a%4", err: subject.ErrPattern},
	}
	for _, tt := range tests {
		name := tt.pattern
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			r, err := subject.ParsePattern(tt.pattern)
			checkErr(t, fmt.Sprintf("ParsePattern(%q)", tt.pattern), err, tt.err)
			if tt.err != nil {
				return
			}
			if r.Method != tt.method || !reflect.DeepEqual(r.Parts, tt.parts) {
				t.Fatalf("ParsePattern(%q) = %+v, want method %q parts %+v", tt.pattern, r, tt.method, tt.parts)
			}
			wantStr := tt.str
			if wantStr == "" {
				wantStr = tt.pattern
			}
			if got := r.String(); got != wantStr {
				t.Fatalf("String() = %q, want %q", got, wantStr)
			}
			if again, err := subject.ParsePattern(r.String()); err != nil || !reflect.DeepEqual(again, r) {
				t.Fatalf("ParsePattern(String()) = %+v, %v; want %+v", again, err, r)
			}
			for _, c := range []struct{ prefix, want string }{{"", tt.sub}, {"api", tt.subAPI}} {
				sub, err := r.Subscription(c.prefix)
				if c.want == noSub {
					checkErr(t, fmt.Sprintf("Subscription(%q)", c.prefix), err, subject.ErrPattern)
					continue
				}
				if err != nil || sub != c.want {
					t.Fatalf("Subscription(%q) = %q, %v; want %q", c.prefix, sub, err, c.want)
				}
			}
		})
	}
}

func repeatPart(p subject.Part, n int) []subject.Part {
	parts := make([]subject.Part, n)
	for i := range parts {
		parts[i] = p
	}
	return parts
}

// TestPatternReceivesItsRequests checks, for routes and paths, that the
// route's subscription receives the subject of every path the pattern matches
// in ServeMux terms, and of no other.
func TestPatternReceivesItsRequests(t *testing.T) {
	tests := []struct {
		pattern, method, path string
		want                  bool
	}{
		{"GET /users/{id}", "GET", "/users/42", true},
		{"GET /users/{id}", "POST", "/users/42", false},
		{"GET /users/{id}", "GET", "/users", false},
		{"GET /users/{id}", "GET", "/users/42/orders", false},
		{"/users/{id}", "DELETE", "/users/a%2Fb", true},
		{"GET /files/{path...}", "GET", "/files/a/b/c", true},
		{"GET /files/{path...}", "POST", "/files/a", true}, // ">" spans the method: the worker's dispatch decides
		{"GET /files/{path...}", "GET", "/files", true},
		{"GET /files/{path...}", "GET", "/filesx/a", false},
		{"GET /users/", "GET", "/users/1/2", true},
		{"GET /{$}", "GET", "/", true},
		{"GET /{$}", "GET", "/x", false},
		{"/{$}", "PATCH", "//", true},
		{"POST /sum", "POST", "/sum/", true},
		{"POST /sum", "POST", "/sum/x", false},
		{"GET /a.b", "GET", "/a%2eb", true},
	}
	for _, tt := range tests {
		r, err := subject.ParsePattern(tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, prefix := range []string{"", "api"} {
			sub, err := r.Subscription(prefix)
			if err != nil {
				t.Fatal(err)
			}
			subj, err := subject.FromPath(prefix, tt.method, tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := subject.Matches(sub, subj); got != tt.want {
				t.Errorf("%q (%s) receives %s %s (%s): %v, want %v", tt.pattern, sub, tt.method, tt.path, subj, got, tt.want)
			}
		}
	}
}

func TestRouteFromSubscription(t *testing.T) {
	tests := []struct {
		prefix, sub string
		want        string // Route.String
		err         error
	}{
		{sub: "sum.POST", want: "POST /sum"},
		{sub: "users.*.GET", want: "GET /users/{p1}"},
		{sub: "a.*.b.*.PUT", want: "PUT /a/{p1}/b/{p2}"},
		{sub: "files.>", want: "/files/{rest...}"},
		{sub: "files.*.>", want: "/files/{p1}/{rest...}"},
		{sub: "users.*", want: "/users"},
		{prefix: "api", sub: "api.*.*", want: "/{p1}"},
		{sub: "GET", want: "GET /{$}"},
		{sub: "*", want: "/{$}"},
		{sub: "a%2Fb.caf%C3%A9.GET", want: "GET /a%2Fb/caf%C3%A9"},
		{sub: "x._INBOX.GET", want: "GET /x/_INBOX"},
		{prefix: "api", sub: "api.sum.POST", want: "POST /sum"},
		{prefix: "api", sub: "api.>", want: "/{rest...}"},
		{prefix: "api", sub: "api._INBOX.GET", want: "GET /_INBOX"},
		{prefix: "a.b", sub: "a.b.x.*", want: "/x"},

		{sub: "", err: subject.ErrSubject},
		{sub: ">", err: subject.ErrSubject},
		{sub: "sum.post", err: subject.ErrSubject},
		{sub: "sum", err: subject.ErrSubject},
		{sub: "sum..POST", err: subject.ErrSubject},
		{sub: ".POST", err: subject.ErrSubject},
		{sub: "a.>.GET", err: subject.ErrSubject},
		{sub: "a*.GET", err: subject.ErrSubject},
		{sub: "$SRV.PING", err: subject.ErrSubject},
		{sub: "*.*", err: subject.ErrSubject},
		{sub: "*.>", err: subject.ErrSubject},
		{sub: "*.x.GET", err: subject.ErrSubject},
		{sub: "%2e.GET", err: subject.ErrSubject},
		{sub: "%2E%2E.GET", err: subject.ErrSubject},
		{sub: "a b.GET", err: subject.ErrSubject},
		{sub: "_INBOX.>", err: subject.ErrSubject},
		{sub: "_inbox.x.GET", err: subject.ErrSubject},
		{sub: strings.Repeat("a.", 65) + "GET", err: subject.ErrSubject},
		{prefix: "api", sub: "sum.POST", err: subject.ErrSubject},
		{prefix: "api", sub: "apisum.POST", err: subject.ErrSubject},
	}
	for _, tt := range tests {
		r, err := subject.RouteFromSubscription(tt.prefix, tt.sub)
		checkErr(t, fmt.Sprintf("RouteFromSubscription(%q, %.40q)", tt.prefix, tt.sub), err, tt.err)
		if tt.err != nil {
			continue
		}
		if got := r.String(); got != tt.want {
			t.Errorf("RouteFromSubscription(%q, %q) = %q, want %q", tt.prefix, tt.sub, got, tt.want)
		}
		// The route read back subscribes exactly what it was read from.
		if sub, err := r.Subscription(tt.prefix); err != nil || sub != tt.sub {
			t.Errorf("RouteFromSubscription(%q, %q).Subscription = %q, %v", tt.prefix, tt.sub, sub, err)
		}
		if again, err := subject.ParsePattern(r.String()); err != nil || !reflect.DeepEqual(again, r) {
			t.Errorf("ParsePattern(%q) = %+v, %v; want %+v", r.String(), again, err, r)
		}
	}
}

// matchCases are NATS subscription semantics; TestMatchesNATS holds a real
// server to the same table.
var matchCases = []struct {
	sub, subj string
	want      bool
}{
	{"foo.bar", "foo.bar", true},
	{"foo.bar", "foo.baz", false},
	{"foo.bar", "foo", false},
	{"foo", "foo.bar", false},
	{"foo.*", "foo.bar", true},
	{"foo.*", "foo", false},
	{"foo.*", "foo.bar.baz", false},
	{"*.bar", "foo.bar", true},
	{"*", "foo", true},
	{"*", "foo.bar", false},
	{"*.*", "a.b", true},
	{"foo.>", "foo.bar", true},
	{"foo.>", "foo.bar.baz", true},
	{"foo.>", "foo", false},
	{">", "foo", true},
	{">", "foo.bar.baz", true},
	{"*.>", "foo", false},
	{"*.>", "foo.bar", true},
	{"foo.*.>", "foo.a.b", true},
	{"foo.*.>", "foo.a", false},
	{"f*", "foo", false}, // a partial wildcard is a literal
	{"f*", "f*", true},
	{"foo.>", "bar.foo", false},
	{"users.*.GET", "users.42.GET", true},
	{"users.*.GET", "users.42.POST", false},
	{"users.*.*", "users.42.DELETE", true},
	{"api.files.>", "api.files.a.b.GET", true},
	{"api.files.>", "files.a.GET", false},
	{"GET", "GET", true},
	{"*", "GET", true},
	{"%2A.GET", "%2A.GET", true},
}

func TestMatches(t *testing.T) {
	for _, tt := range matchCases {
		if got := subject.Matches(tt.sub, tt.subj); got != tt.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", tt.sub, tt.subj, got, tt.want)
		}
	}
}
