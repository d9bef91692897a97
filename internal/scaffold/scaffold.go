// Package scaffold renders new metro projects and workers from the
// embedded templates and adds workers to an existing metro.yaml. It hides
// three things: which files a project or worker is made of, how a worker
// is spliced into a user's metro.yaml without disturbing a byte of what
// the user wrote, and how a set of files is written all or nothing.
package scaffold

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/format"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"text/template"

	"github.com/metropolis-dev/metro/internal/config"
)

// Errors the command line turns into exit code 2 (misuse); every other
// error is a failure (exit code 1).
var (
	ErrInvalidName  = errors.New("invalid name")
	ErrInvalidRoute = errors.New("invalid route")
	ErrUnknownLang  = errors.New("unknown language")
	ErrExists       = errors.New("already exists")
	ErrNotEmpty     = errors.New("directory is not empty")
	ErrMetroSrc     = errors.New("no metro release to require")
)

// Languages a worker can be written in.
const (
	LangGo   = "go"
	LangNode = "node"
)

// Langs lists the languages in the order help text shows them.
var Langs = []string{LangGo, LangNode}

// ModulePath is metro's own module, which generated projects require.
const ModulePath = "github.com/metropolis-dev/metro"

// GoVersion is the go line of generated go.mod files: the one metro's own
// go.mod declares, since a project cannot build the SDK with less.
const GoVersion = "1.26.0"

// CheckName reports whether name may name a project or worker: it becomes
// a queue group, a NATS service and a Kubernetes object, so it must be a
// DNS-1123 label.
func CheckName(kind, name string) error {
	if !config.IsDNSLabel(name) {
		return fmt.Errorf("%w: %s name %q must be a DNS-1123 label: 1 to 63 lower-case letters, digits or '-', starting and ending with a letter or digit", ErrInvalidName, kind, name)
	}
	return nil
}

// file is one file to write, relative to the directory it is written in.
type file struct {
	rel  string // slash-separated
	data []byte
}

// render executes every template of fsys (each named NAME.tmpl, and
// dot.NAME.tmpl for a file that starts with a dot) with data, into files
// under dir. Go sources are gofmt'ed: the templates need not be.
func render(fsys fs.FS, root, dir string, data any) ([]file, error) {
	var out []file
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		name := strings.TrimSuffix(path.Base(rel), ".tmpl")
		if n, ok := strings.CutPrefix(name, "dot."); ok {
			name = "." + n
		}
		rel = path.Join(path.Dir(rel), name)
		t, err := template.New(p).Funcs(funcs).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return fmt.Errorf("parsing template %s: %w", p, err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return fmt.Errorf("rendering template %s: %w", p, err)
		}
		b := buf.Bytes()
		if strings.HasSuffix(name, ".go") {
			if b, err = format.Source(b); err != nil {
				return fmt.Errorf("formatting %s: %w", rel, err)
			}
		}
		out = append(out, file{rel: path.Join(dir, rel), data: b})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

var funcs = template.FuncMap{
	// quote writes a Go string literal.
	"quote": strconv.Quote,
	// js writes a JavaScript value as JSON, which JavaScript reads as is.
	"js": func(v any) (string, error) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	},
	// modpath writes a path as go.mod needs it: quoted when it holds a
	// space or a quote.
	"modpath": func(p string) string {
		if strings.ContainsAny(p, " \t\"'`\\") {
			return strconv.Quote(p)
		}
		return p
	},
}
