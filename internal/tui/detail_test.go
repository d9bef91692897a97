package tui

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/metropolis-dev/metro/internal/tap"
)

func TestRenderBody(t *testing.T) {
	tests := []struct {
		name string
		msg  tap.Message
		want []string // each must appear
		not  []string // none may appear
	}{
		{"empty", tap.Message{}, []string{"(no headers)", "(empty body)"}, nil},
		{"text", msg("plain words\nsecond line", "Content-Type", "text/plain"), []string{"Content-Type: text/plain", "23 bytes", "plain words", "second line"}, []string{"JSON"}},
		{"json pretty", msg(`{"a":[1,true]}`), []string{"JSON, 14 bytes", "  \"a\": [\n    1,\n    true\n  ]"}, nil},
		{"truncated json is shown as text", tap.Message{Body: []byte(`{"a":1`), Size: 9000}, []string{"9000 bytes, first 6 shown", `{"a":1`}, []string{"JSON"}},
		{"binary", tap.Message{Body: []byte{0, 1, 2, 0xff}, Size: 4}, []string{"binary, 4 bytes; first 4:", "00 01 02 ff"}, nil},
		{"utf-8 cut at the limit is text", tap.Message{Body: []byte("héllo")[:2], Size: 100}, []string{"100 bytes, first 2 shown"}, []string{"binary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			renderMessage(&b, tt.msg, 80)
			got := b.String()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("unexpected %q in:\n%s", n, got)
				}
			}
		})
	}
}

// FuzzColorJSON: colouring only adds styles; without them the text is the
// indented JSON, byte for byte.
func FuzzColorJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[true,false,null,-1.5e3,"x\"y:"]`, `{"k:":{"n":"\\"}}`, `"just a string"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid([]byte(s)) || !utf8.ValidString(s) {
			return // not JSON, or shown as binary
		}
		indented := indentJSON(t, s)
		if got := ansi.Strip(colorJSON(indented)); got != indented {
			t.Fatalf("colorJSON changed the text:\n%s\nwant\n%s", got, indented)
		}
	})
}

func indentJSON(t *testing.T, s string) string {
	t.Helper()
	var v json.RawMessage = []byte(s)
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Skip()
	}
	return string(b)
}
