package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"
)

// decodeLine parses one logged line, dropping the time (the two handlers
// format it with different precision).
func decodeLine(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	if _, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil {
		t.Errorf("time %q: %v", m["time"], err)
	}
	delete(m, "time")
	return m
}

// TestAccessJSONMatchesSlog: the access log's handler writes what
// slog.JSONHandler writes for the same records.
func TestAccessJSONMatchesSlog(t *testing.T) {
	attrs := []slog.Attr{
		slog.String("request_id", "abc"),
		slog.String("path", "/a/%2F/\"quoted\"\\\n\t\x01\x7f é \xff"),
		slog.Int("status", 404),
		slog.Float64("duration_ms", 1.25),
		slog.Bool("ok", false),
		slog.Duration("took", 3*time.Millisecond),
	}
	var fast, std bytes.Buffer
	slog.New(newAccessJSON(&fast)).With("svc", "gw").LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
	slog.New(slog.NewJSONHandler(&std, nil)).With("svc", "gw").LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
	got, want := decodeLine(t, fast.Bytes()), decodeLine(t, std.Bytes())
	want["took"] = "3ms" // slog writes a duration as nanoseconds; the access log as text
	if !reflect.DeepEqual(got, want) {
		t.Errorf("access JSON\n got %v\nwant %v", got, want)
	}
	if !bytes.HasSuffix(fast.Bytes(), []byte("}\n")) || bytes.Count(fast.Bytes(), []byte("\n")) != 1 {
		t.Errorf("not one line: %q", fast.Bytes())
	}
}

// FuzzAccessJSONString: any string is written as valid JSON that decodes
// to the string with each invalid UTF-8 byte replaced, as encoding/json
// would.
func FuzzAccessJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\", "\x00\x1f\x7f", "é\xff\xfe", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q -> %s: %v", s, b, err)
		}
		var want []rune
		for i := 0; i < len(s); {
			r, size := utf8.DecodeRuneInString(s[i:])
			want = append(want, r) // RuneError for an invalid byte
			i += size
		}
		if got != string(want) {
			t.Errorf("%q -> %s -> %q, want %q", s, b, got, string(want))
		}
	})
}
