package scaffold

import (
	"errors"
	"go/token"
	"net/http"
	"reflect"
	"testing"

	"github.com/metropolis-dev/metro/internal/subject"
)

func TestParseRoutes(t *testing.T) {
	tests := []struct {
		pattern, handler, sample, subject string
		params                            []string
	}{
		{"GET /hello", "getHello", "/hello", "hello.GET", nil},
		{"GET /hello/{name}", "getHelloByName", "/hello/ada", "hello.ada.GET", []string{"name"}},
		{"GET   /invoices/{id}", "getInvoicesByID", "/invoices/42", "invoices.42.GET", []string{"id"}},
		{"POST /user-profiles/{userID}/avatar", "postUserProfilesByUserIDAvatar", "/user-profiles/42/avatar", "user-profiles.42.avatar.POST", []string{"userID"}},
		{"/files/{path...}", "handleFilesByPath", "/files/a/b", "files.a.b.GET", []string{"path"}},
		{"GET /static/", "getStatic", "/static/a", "static.a.GET", nil},
		{"GET /{$}", "getRoot", "/", "GET", nil},
		{"GET /users/{$}", "getUsers", "/users/", "users.GET", nil},
		{"GET /a%20b", "getAB", "/a%20b", "a%20b.GET", nil},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			rs, err := parseRoutes([]string{tt.pattern})
			if err != nil {
				t.Fatal(err)
			}
			r := rs[0]
			if r.Handler != tt.handler || r.SamplePath != tt.sample || r.SampleSubject != tt.subject || !reflect.DeepEqual(r.Params, tt.params) {
				t.Errorf("got handler %s, sample %s, subject %s, params %v; want %s, %s, %s, %v",
					r.Handler, r.SamplePath, r.SampleSubject, r.Params, tt.handler, tt.sample, tt.subject, tt.params)
			}
		})
	}
}

func TestParseRoutesRefuses(t *testing.T) {
	tests := [][]string{
		{""},
		{"GET"},
		{"get /x"},
		{"GET x"},
		{"GET /"},                // every subject without a prefix
		{"/{path...}"},           // the same
		{"GET /_INBOX/x"},        // replies' space
		{"GET /a/{b}/{b}"},       // ServeMux refuses a repeated name
		{"GET /a/{b"},            // not a whole-segment wildcard
		{"GET /a/../b"},          // dot segment
		{"GET /x\n/y"},           // a newline would break the generated code
		{"GET /x", "GET /x"},     // twice
		{"GET /{a}", "GET /{b}"}, // ServeMux: conflicting patterns
	}
	for _, tt := range tests {
		if _, err := parseRoutes(tt); !errors.Is(err, ErrInvalidRoute) {
			t.Errorf("parseRoutes(%q) = %v, want ErrInvalidRoute", tt, err)
		}
	}
}

func TestHandlerNamesAreUnique(t *testing.T) {
	rs, err := parseRoutes([]string{"GET /a-b", "GET /a/b", "GET /a_b"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range rs {
		if seen[r.Handler] {
			t.Errorf("handler name %s used twice: %+v", r.Handler, rs)
		}
		seen[r.Handler] = true
	}
}

// FuzzParseRoutes: any pattern accepted yields a Go identifier for its
// handler, and a sample request that the route itself answers, both in a
// ServeMux (the generated test) and on NATS (its subscription receives it).
func FuzzParseRoutes(f *testing.F) {
	for _, p := range []string{"GET /hello/{name}", "/files/{p...}", "GET /{$}", "POST /a%20b/{id}/", "DELETE /x/{y}/z"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rs, err := parseRoutes([]string{p})
		if err != nil {
			return
		}
		r := rs[0]
		if !token.IsIdentifier(r.Handler) || token.IsKeyword(r.Handler) {
			t.Fatalf("%q: handler name %q is not an identifier", p, r.Handler)
		}
		mux := http.NewServeMux()
		mux.HandleFunc(r.Pattern, func(http.ResponseWriter, *http.Request) {})
		req, err := http.NewRequest(r.SampleMethod, r.SamplePath, nil)
		if err != nil {
			t.Fatalf("%q: sample %s %s: %v", p, r.SampleMethod, r.SamplePath, err)
		}
		if _, got := mux.Handler(req); got != r.Pattern {
			t.Fatalf("%q: sample %s %s is routed to %q", p, r.SampleMethod, r.SamplePath, got)
		}
		sr, _ := subject.ParsePattern(r.Pattern)
		sub, _ := sr.Subscription("")
		if !subject.Matches(sub, r.SampleSubject) {
			t.Fatalf("%q: subscription %s does not receive %s", p, sub, r.SampleSubject)
		}
	})
}
