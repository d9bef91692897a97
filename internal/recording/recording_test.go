package recording

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sample() Exchange {
	return Exchange{
		Time:      time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Subject:   "products.apple.GET",
		Method:    "GET",
		Path:      "/products/apple",
		Query:     "x=1",
		Route:     "GET /products/{id}",
		RequestID: "r1",
		Worker:    "catalog",
		LatencyMS: 1.5,
		Outcome:   OutcomeOK,
		Request:   Message{Header: http.Header{"Accept": {"application/json"}}},
		Status:    200,
		Reply:     &Message{Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"id":"apple","price":50}` + "\n")},
	}
}

func roundTrip(t *testing.T, exs []Exchange, redact []string) ([]Exchange, string) {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, redact)
	for _, ex := range exs {
		if err := w.Write(ex); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := Read(bytes.NewReader(buf.Bytes()), "x.ndjson")
	if err != nil {
		t.Fatalf("reading back: %v\n%s", err, buf.String())
	}
	return got, buf.String()
}

// Bodies that are not UTF-8 (every byte value, random bytes) and text
// with characters JSON escapes come back byte for byte.
func TestBodiesRoundTrip(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	random := make([]byte, 4096)
	rand.Read(random)
	bodies := map[string][]byte{
		"every byte":   all,
		"random":       random,
		"png header":   {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 0x0d},
		"text escapes": []byte("<a href=\"x\">&</a>\u2028\t\x00 done\n"),
		"empty":        nil,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			ex := sample()
			ex.Request.Body = body
			ex.Reply.Body = body
			got, line := roundTrip(t, []Exchange{ex}, nil)
			if !bytes.Equal(got[0].Request.Body, body) || !bytes.Equal(got[0].Reply.Body, body) {
				t.Fatalf("body changed:\nwant %q\ngot  %q / %q", body, got[0].Request.Body, got[0].Reply.Body)
			}
			if strings.Count(line, "\n") != 1 {
				t.Errorf("one exchange took more than one line: %q", line)
			}
		})
	}
	// The format choice: readable text, base64 only where needed; checked
	// with encoding/json rather than this package's reader.
	ex := sample()
	ex.Reply.Body = all
	_, line := roundTrip(t, []Exchange{ex}, nil)
	var generic map[string]any
	if err := json.Unmarshal([]byte(line), &generic); err != nil {
		t.Fatal(err)
	}
	if _, ok := generic["reply"].(map[string]any)["body_base64"]; !ok {
		t.Errorf("binary reply body not written as body_base64: %s", line)
	}
	if b, _ := generic["request"].(map[string]any); b["body"] != nil || b["body_base64"] != nil {
		t.Errorf("empty request body written: %s", line)
	}
}

func TestRedaction(t *testing.T) {
	ex := sample()
	ex.Request.Header = http.Header{
		"Authorization": {"Bearer s3cr3t-token"},
		"Cookie":        {"session=c00kie-value"},
		"X-Api-Key":     {"k3y-value"},
		"Accept":        {"text/plain"},
	}
	ex.Reply.Header = http.Header{"Set-Cookie": {"session=n3w-c00kie; HttpOnly"}, "Content-Type": {"text/plain"}}
	before := ex.Request.Header.Clone()
	got, file := roundTrip(t, []Exchange{ex}, []string{"x-api-key"})
	for _, secret := range []string{"s3cr3t-token", "c00kie-value", "n3w-c00kie", "k3y-value"} {
		if strings.Contains(file, secret) {
			t.Errorf("recording holds %q:\n%s", secret, file)
		}
	}
	for _, h := range []string{"Authorization", "Cookie", "X-Api-Key"} {
		if v := got[0].Request.Header.Get(h); v != Redacted {
			t.Errorf("request %s = %q, want the marker", h, v)
		}
	}
	if v := got[0].Reply.Header.Get("Set-Cookie"); v != Redacted {
		t.Errorf("reply Set-Cookie = %q, want the marker", v)
	}
	if got[0].Request.Header.Get("Accept") != "text/plain" {
		t.Errorf("a plain header was redacted: %v", got[0].Request.Header)
	}
	if !reflect.DeepEqual(ex.Request.Header, before) {
		t.Errorf("Write changed the caller's headers: %v", ex.Request.Header)
	}
}

func TestReadErrorsNameTheLine(t *testing.T) {
	good := func() string {
		var buf bytes.Buffer
		w := NewWriter(&buf, nil)
		w.Write(sample())
		w.Flush()
		return buf.String()
	}()
	tests := []struct {
		name, file string
		line       int
		want       string
	}{
		{"truncated", good + good[:len(good)/2], 2, "cut short"},
		{"not json", good + "\n" + "hello\n", 3, "not valid JSON"},
		{"status as string", good + strings.Replace(good, `"status":200`, `"status":"200"`, 1), 2, "rec.ndjson:2: status: a JSON string where a number belongs"},
		{"header value as string", strings.Replace(good, `["application/json"]`, `"application/json"`, 1), 1, "rec.ndjson:1: request: headers: a JSON string where an array belongs"},
		{"unknown field", strings.Replace(good, `"worker"`, `"wroker"`, 1), 1, `unknown field "wroker"`},
		{"bad base64", strings.Replace(good, `"body":`, `"body_base64":"!!!","x":`, 1), 1, "reply:"},
		{"both bodies", strings.Replace(good, `"body":`, `"body_base64":"AA==","body":`, 1), 1, "reply: body and body_base64 are both set"},
		{"bad method", strings.Replace(good, `"method":"GET"`, `"method":"get"`, 1), 1, "method:"},
		{"bad status", strings.Replace(good, `"status":200`, `"status":999`, 1), 1, "status: 999"},
		{"bad outcome", strings.Replace(good, `"outcome":"ok"`, `"outcome":"fine"`, 1), 1, "outcome:"},
		{"no request", strings.Replace(good, `"request":{"headers":{"Accept":["application/json"]}},`, ``, 1), 1, "request: missing"},
		{"two values", strings.TrimSuffix(good, "\n") + " {}\n", 1, "more than one JSON value"},
		{"bad header", strings.Replace(good, `"Accept"`, `"Acc ept"`, 1), 1, "request.headers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tt.file), "rec.ndjson")
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want a *LineError", err)
			}
			if le.Line != tt.line || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "rec.ndjson:") {
				t.Errorf("err = %q (line %d), want line %d and %q", err, le.Line, tt.line, tt.want)
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.ndjson")
	os.WriteFile(empty, []byte("\n\n"), 0o644)
	if _, err := ReadFile(empty); !errors.Is(err, ErrEmpty) || !strings.Contains(err.Error(), empty) {
		t.Errorf("empty file: %v", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file read")
	}
	// Blank lines are skipped; line numbers stay those of the file.
	var buf bytes.Buffer
	w := NewWriter(&buf, nil)
	w.Write(sample())
	w.Flush()
	p := filepath.Join(dir, "r.ndjson")
	os.WriteFile(p, []byte("\n"+buf.String()+"\n"+buf.String()), 0o644)
	exs, err := ReadFile(p)
	if err != nil || len(exs) != 2 || exs[0].Line != 2 || exs[1].Line != 4 {
		t.Fatalf("ReadFile = %d exchanges, lines %v, %v", len(exs), lines(exs), err)
	}
}

func lines(exs []Exchange) []int {
	var out []int
	for _, e := range exs {
		out = append(out, e.Line)
	}
	return out
}

// FuzzParse: no input makes the reader panic, and whatever it accepts is
// written back and read again unchanged.
func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	w := NewWriter(&buf, nil)
	w.Write(sample())
	ex := sample()
	ex.Reply.Body = []byte{0xff, 0, 1}
	w.Write(ex)
	w.Flush()
	for _, l := range strings.Split(buf.String(), "\n") {
		f.Add([]byte(l))
	}
	f.Add([]byte(`{"subject":"x","outcome":"published","request":{}}`))
	f.Add([]byte(`{"subject":"a.GET","method":"GET","path":"/a","outcome":"ok","status":200,"request":{},"reply":{"parts":3,"body_omitted":{"length":5,"sha256":"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}},"stream_error":"cut"}`))
	f.Add([]byte(`{"subject":"a.GET","method":"GET","path":"/a","outcome":"ok","status":200,"request":{"body_base64":"AAE="},"reply":{"body":"\u00e9"}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		ex, err := Parse(line)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		w := NewWriter(&buf, nil)
		if err := w.Write(ex); err != nil {
			t.Fatalf("writing what was read: %v", err)
		}
		w.Flush()
		again, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("reading what was written: %v\n%s", err, buf.Bytes())
		}
		// Redaction may rewrite secret headers; compare the rest.
		ex.Request.Header, again.Request.Header = nil, nil
		if ex.Reply != nil {
			ex.Reply.Header, again.Reply.Header = nil, nil
		}
		if !reflect.DeepEqual(normal(ex), normal(again)) {
			t.Fatalf("round trip changed the exchange:\n%+v\n%+v", ex, again)
		}
	})
}

// normal makes nil and empty bodies, and times, compare equal.
func normal(e Exchange) Exchange {
	if len(e.Request.Body) == 0 {
		e.Request.Body = nil
	}
	if e.Reply != nil && len(e.Reply.Body) == 0 {
		e.Reply.Body = nil
	}
	e.Time = e.Time.UTC()
	return e
}
