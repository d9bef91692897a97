package devserver

import (
	"path"
	"strings"
	"testing"
)

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*.js", "index.js", true},
		{"*.js", "lib/util.js", true}, // no slash: any depth
		{"*.js", "index.ts", false},
		{"**/*.js", "index.js", true},
		{"**/*.js", "a/b/c.js", true},
		{"src/**/*.js", "src/x.js", true},
		{"src/**/*.js", "src/a/b/x.js", true},
		{"src/**/*.js", "lib/x.js", false},
		{"src/*.js", "src/a/x.js", false},
		{"./src/*.js", "src/x.js", true},
		{"src/**", "src/a/b", true},
		{"**", "anything/at/all", true},
		{"a/**/**/b", "a/b", true},
		{"a/[", "a/[", false}, // malformed: matches nothing
		{"templates/*.html", "templates/index.html", true},
		{"**/*.{js,mjs}", "lib/a.mjs", true},
		{"**/*.{js,mjs}", "lib/a.ts", false},
	}
	for _, tt := range tests {
		if got := matchGlob(tt.pattern, tt.name); got != tt.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func FuzzMatchGlob(f *testing.F) {
	for _, s := range [][2]string{{"**/*.go", "a/b.go"}, {"src/**", "src/x"}, {"*", "x"}, {"a/[b-", "a/b"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 64 || len(name) > 256 {
			return
		}
		got := matchGlob(pattern, name) // must not panic or hang
		// Without "**" and {alternatives}, a pattern with slashes is
		// path.Match segment by segment, which for equal segment counts
		// is path.Match itself.
		p := strings.TrimPrefix(pattern, "./")
		if strings.Contains(p, "/") && !strings.ContainsAny(p, "{}") && !strings.Contains(p, "**") &&
			strings.Count(p, "/") == strings.Count(name, "/") {
			want, err := path.Match(p, name)
			if err == nil && got != want {
				t.Errorf("matchGlob(%q, %q) = %v, path.Match says %v", pattern, name, got, want)
			}
		}
	})
}
