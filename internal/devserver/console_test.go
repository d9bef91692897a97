package devserver

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// golden compares got with testdata/NAME, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", p, got, want)
	}
}

func TestConsolePrefixesLines(t *testing.T) {
	tests := []struct {
		name   string
		writes []string // written in order to the "catalog" writer
		flush  bool
		want   string
	}{
		{"one line", []string{"hello\n"}, false, "catalog | hello\n"},
		{"split across writes", []string{"hel", "lo\nwor", "ld\n"}, false, "catalog | hello\ncatalog | world\n"},
		{"crlf", []string{"a\r\nb\r\n"}, false, "catalog | a\ncatalog | b\n"},
		{"partial line waits", []string{"no newline"}, false, ""},
		{"flush writes the rest", []string{"no newline"}, true, "catalog | no newline\n"},
		{"empty line", []string{"\n"}, false, "catalog | \n"},
		{"long line is cut", []string{strings.Repeat("x", maxLine+1)}, false, "catalog | " + strings.Repeat("x", maxLine+1) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			c := newConsole(&out, false, []string{"catalog", "dev"})
			w := c.writer("catalog")
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if tt.flush {
				w.Flush()
			}
			if out.String() != tt.want {
				t.Errorf("got %q, want %q", out.String(), tt.want)
			}
		})
	}
}

func TestConsoleAlignsAndColours(t *testing.T) {
	var plain bytes.Buffer
	c := newConsole(&plain, false, []string{"dev", "gateway", "orders.2"})
	c.line("dev", "starting")
	c.writer("orders.2").Write([]byte("listening\n")) //nolint:errcheck
	c.lines("gateway", "a\nb\n")
	golden(t, "console.golden", plain.String())

	var col bytes.Buffer
	c = newConsole(&col, true, []string{"dev", "catalog"})
	c.line("catalog", "x")
	c.line("dev", "y")
	c.line("catalog", "z")
	lines := strings.Split(strings.TrimSuffix(col.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %q", col.String())
	}
	if !strings.HasPrefix(lines[0], "\x1b[") || !strings.Contains(lines[0], "catalog |\x1b[0m x") {
		t.Errorf("no colour in %q", lines[0])
	}
	if lines[0][:5] == lines[1][:5] {
		t.Errorf("catalog and dev share a colour: %q %q", lines[0], lines[1])
	}
	if lines[0][:5] != lines[2][:5] {
		t.Errorf("catalog changed colour: %q %q", lines[0], lines[2])
	}
}
