package scaffold

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Generated projects declare the go version that metro's own go.mod does:
// less and the SDK would not build, more and users are pushed to upgrade
// for nothing.
func TestGoVersionMatchesMetro(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "go "); ok {
			if strings.TrimSpace(v) != GoVersion {
				t.Errorf("metro's go.mod says go %s, generated projects go %s", v, GoVersion)
			}
			return
		}
	}
	t.Fatal("no go line in metro's go.mod")
}

func TestBuildVersionOfATestBinary(t *testing.T) {
	// Tests are built from this source tree: there is no release.
	if v := BuildVersion(); v != "" {
		t.Errorf("BuildVersion() = %q for a build from source, want \"\"", v)
	}
	// Under -trimpath there is no path to suggest; otherwise it is this tree.
	if hint := sourceTreeHint(); hint != "" && hint != repoRoot(t) {
		t.Errorf("sourceTreeHint() = %q, want %q", hint, repoRoot(t))
	}
}
