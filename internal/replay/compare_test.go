package replay

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/metropolis-dev/metro/internal/recording"
)

func recorded(status int, ct, body string) *recording.Exchange {
	h := http.Header{}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	return &recording.Exchange{Status: status, Outcome: "ok", Reply: &recording.Message{Header: h, Body: []byte(body)}}
}

func resp(status int, ct, body string) Response {
	h := http.Header{}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	return Response{Status: status, Header: h, Body: []byte(body)}
}

func TestCompare(t *testing.T) {
	const js = "application/json"
	tests := []struct {
		name   string
		want   *recording.Exchange
		got    Response
		ignore []string
		diffs  []string
	}{
		{"same", recorded(200, js, `{"a":1}`), resp(200, js, `{"a":1}`), nil, nil},
		{"JSON as JSON: order, spacing, number forms", recorded(200, js, `{"a":1,"b":[1,2]}`), resp(200, "application/json; charset=utf-8", "{ \"b\": [1, 2.0],\n \"a\": 1e0 }\n"), nil,
			[]string{`content-type: want "application/json", got "application/json; charset=utf-8"`}},
		{"a changed price names the field", recorded(201, js, `{"id":"1","items":[{"product":"apple","price":50}],"total":150}`),
			resp(201, js, `{"id":"2","items":[{"product":"apple","price":75}],"total":225}`), []string{"$.id"},
			[]string{"body $.items[0].price: want 50, got 75", "body $.total: want 150, got 225"}},
		{"recursive ignore", recorded(200, js, `{"a":{"at":"x"},"b":[{"at":"y"}]}`), resp(200, js, `{"a":{"at":"z"},"b":[{"at":"w"}]}`), []string{"$..at"}, nil},
		{"absent and extra members", recorded(200, js, `{"a":1,"odd key":2}`), resp(200, js, `{"a":1,"c":[3]}`), nil,
			[]string{`body $.c: want (absent), got [3]`, `body $["odd key"]: want 2, got (absent)`}},
		{"shorter array", recorded(200, js, `[1,2]`), resp(200, js, `[1]`), nil, []string{"body $[1]: want 2, got (absent)"}},
		{"type change", recorded(200, js, `{"a":"1"}`), resp(200, js, `{"a":1}`), nil, []string{`body $.a: want "1", got 1`}},
		{"status and type", recorded(200, js, `{}`), resp(404, "application/problem+json", `{}`), nil,
			[]string{"status: want 200, got 404", `content-type: want "application/json", got "application/problem+json"`}},
		{"text line", recorded(200, "text/plain", "a\nb\nc"), resp(200, "text/plain", "a\nB\nc"), nil, []string{`body line 2: want "b", got "B"`}},
		{"binary", recorded(200, "image/png", "\x89PNG\x00\x01"), resp(200, "image/png", "\x89PNG\x00\x02\x03"), nil,
			[]string{"body: want 6 bytes, got 7 bytes, first different at byte 5"}},
		{"JSON type but not JSON", recorded(200, js, `{`), resp(200, js, `{`), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ig, err := ParseIgnore(tt.ignore)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range Compare(tt.want, tt.got, ig) {
				got = append(got, d.String())
			}
			if !reflect.DeepEqual(got, tt.diffs) {
				t.Errorf("diffs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.diffs, "\n"))
			}
		})
	}
	if _, err := ParseIgnore([]string{"$.[bad"}); err == nil {
		t.Error("a malformed JSONPath was accepted")
	}
}

// The JSON comparison agrees with encoding/json's own view of equality
// (decode both, compare the values) on documents that differ only in
// form.
func TestJSONEqualAgreesWithDecoding(t *testing.T) {
	pairs := [][2]string{
		{`{"a":[1,{"b":null}],"c":"x"}`, `{"c":"x","a":[1,{"b":null}]}`},
		{`{"a":1}`, `{"a":2}`},
		{`[true,false]`, `[false,true]`},
		{`{"a":"é"}`, `{"a":"\u00e9"}`},
	}
	for _, p := range pairs {
		var x, y any
		json.Unmarshal([]byte(p[0]), &x)
		json.Unmarshal([]byte(p[1]), &y)
		if got, want := JSONEqual([]byte(p[0]), []byte(p[1])), reflect.DeepEqual(x, y); got != want {
			t.Errorf("JSONEqual(%s, %s) = %v, encoding/json says %v", p[0], p[1], got, want)
		}
	}
}

func TestFilter(t *testing.T) {
	ex := &recording.Exchange{Subject: "api.products.apple.GET", Method: "GET", Path: "/products/apple"}
	for _, tt := range []struct {
		filter string
		match  bool
	}{
		{"GET /products/{id}", true},
		{"/products/", true},
		{"POST /products/{id}", false},
		{"GET /orders/{id}", false},
		{"api.products.>", true},
		{"products.>", false},
		{"/", true},
	} {
		f, err := ParseFilter(tt.filter)
		if err != nil {
			t.Fatalf("%q: %v", tt.filter, err)
		}
		if got := f.Match(ex); got != tt.match {
			t.Errorf("%q matches = %v, want %v", tt.filter, got, tt.match)
		}
	}
	for _, bad := range []string{"GET /x/{bad", "a..b", ""} {
		if _, err := ParseFilter(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzCompare: any body, compared with itself, matches (with and without
// an ignore), and comparing two bodies never panics.
func FuzzCompare(f *testing.F) {
	f.Add([]byte(`{"a":[1,{"b":2.50}],"c":"x"}`), []byte(`{"a":[1,{"b":2.5}]}`), "application/json")
	f.Add([]byte("line\nother"), []byte("line\n"), "text/plain")
	f.Add([]byte{0xff, 0, 1}, []byte{0xff}, "application/octet-stream")
	f.Add([]byte(`[1e400, -0, 0]`), []byte(`[1e400, 0, -0]`), "application/problem+json")
	ig, err := ParseIgnore([]string{"$..id"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b []byte, ct string) {
		want := recorded(200, ct, string(a))
		for _, ignore := range []Ignore{nil, ig} {
			if d := Compare(want, resp(200, ct, string(a)), ignore); len(d) != 0 {
				t.Fatalf("%q (%s) differs from itself: %v", a, ct, d)
			}
			Compare(want, resp(201, ct, string(b)), ignore)
		}
	})
}
