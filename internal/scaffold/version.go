package scaffold

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
)

// placeholderVersion is what go.mod requires when a replace directive
// supplies the module: the go command's own convention for "no release".
const placeholderVersion = "v0.0.0-00010101000000-000000000000"

// BuildVersion is the metro release this binary was built from, or "" when
// it was built from a source tree ("(devel)", or a "+dirty" VCS stamp):
// then there is no version that a generated go.mod could require.
func BuildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	v := bi.Main.Version
	if bi.Main.Path != ModulePath {
		// metro as a dependency of another binary.
		v = ""
		for _, d := range bi.Deps {
			if d.Path == ModulePath {
				v = d.Version
				if d.Replace != nil {
					v = ""
				}
			}
		}
	}
	if !strings.HasPrefix(v, "v") || strings.Contains(v, "+") {
		return ""
	}
	return v
}

// sourceTreeHint returns the metro source tree this binary was compiled
// from, when it is still there, to suggest it in an error message. Builds
// with -trimpath have no such path.
func sourceTreeHint() string {
	_, f, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(f) {
		return ""
	}
	dir := filepath.Dir(filepath.Dir(filepath.Dir(f))) // internal/scaffold/version.go
	if isMetroSource(dir) {
		return dir
	}
	return ""
}

// isMetroSource reports whether dir holds metro's go.mod.
func isMetroSource(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fs := strings.Fields(s.Text()); len(fs) == 2 && fs[0] == "module" && strings.Trim(fs[1], `"`) == ModulePath {
			return true
		}
	}
	return false
}
