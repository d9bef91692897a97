package devserver

import (
	"path"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// matchGlob reports whether name, a slash-separated path relative to the
// watched directory, matches pattern: doublestar syntax ("**" for any
// number of directories, {a,b} alternatives), as in .gitignore and most
// editors. A pattern without a slash matches the base name at any depth
// ("*.js" is "**/*.js"). A malformed pattern matches nothing.
func matchGlob(pattern, name string) bool {
	pattern = strings.TrimPrefix(pattern, "./")
	if !strings.Contains(pattern, "/") {
		name = path.Base(name)
	}
	ok, err := doublestar.Match(pattern, name)
	return err == nil && ok
}
