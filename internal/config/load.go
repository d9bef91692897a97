package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Find searches dir and its parents for metro.yaml, the way the go command
// finds go.mod. The path returned keeps dir's form (relative stays
// relative), so messages show the path the user would type.
func Find(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("finding %s: %w", FileName, err)
	}
	up := ""
	for {
		fi, err := os.Stat(filepath.Join(abs, FileName))
		if err == nil && !fi.IsDir() {
			if filepath.IsAbs(dir) {
				return filepath.Join(abs, FileName), nil
			}
			return filepath.Join(dir, up, FileName), nil
		}
		parent := filepath.Dir(abs)
		if parent == abs {
			return "", ErrNotFound
		}
		abs, up = parent, filepath.Join(up, "..")
	}
}

// LoadDir finds metro.yaml from dir upward and loads it.
func LoadDir(dir string) (*Config, error) {
	p, err := Find(dir)
	if err != nil {
		return nil, err
	}
	return Load(p)
}

// Load reads the file at path over Default, strictly: unknown keys, wrong
// types and invalid values are errors, each an *Error naming path, line and
// key; all of them are reported at once (errors.Join), so a user fixes a
// file in one pass. The result has passed Validate.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, dir, data)
}

// Parse is Load on bytes already read: file names the source in messages,
// dir is where relative worker paths are resolved.
func Parse(file, dir string, data []byte) (*Config, error) {
	c := Default()
	c.Path, c.Dir = file, dir
	c.lines = map[string]int{}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, syntaxError(file, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, &Error{File: file, Line: more.Line, Msg: "more than one YAML document"}
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxError(file, err)
	}

	d := decoder{file: file, lines: c.lines}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root := doc.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			// An empty file (or only comments): every default holds.
		} else {
			d.value(root, reflect.ValueOf(&c).Elem(), "")
		}
	}
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	for name, w := range c.Workers {
		w.Line = c.lines["workers."+name]
		if w.Replicas == 0 {
			// Absent or 0 both mean one: a declared worker that never runs
			// is more likely a typo than an intent.
			w.Replicas = 1
		}
		c.Workers[name] = w
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// decoder walks a yaml.v3 node tree into a value by its yaml tags. It is
// written out rather than left to yaml.Node.Decode because it must know the
// line and dotted key of every value, reject what the structs do not name,
// and keep going after a mistake to report all of them.
type decoder struct {
	file  string
	lines map[string]int // dotted key -> line where the file sets it
	errs  []error
	depth int
}

func (d *decoder) fail(n *yaml.Node, key, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

var (
	durationType = reflect.TypeFor[Duration]()
	sizeType     = reflect.TypeFor[ByteSize]()
)

// maxDepth bounds alias expansion: a YAML "billion laughs" document could
// otherwise make the walk exponential.
const maxDepth = 64

func (d *decoder) value(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind == yaml.AliasNode {
		if d.depth >= maxDepth || n.Alias == nil {
			d.fail(n, key, "alias nested too deeply")
			return
		}
		d.depth++
		defer func() { d.depth-- }()
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // "key:" with no value keeps the default
	}
	switch v.Type() {
	case durationType:
		if !d.scalar(n, key, "a duration") {
			return
		}
		dur, err := ParseDuration(n.Value)
		if err != nil {
			d.fail(n, key, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(dur))
		return
	case sizeType:
		if !d.scalar(n, key, "a size") {
			return
		}
		sz, err := ParseByteSize(n.Value)
		if err != nil {
			d.fail(n, key, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(sz))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), key)
	case reflect.Struct:
		d.structValue(n, v, key)
	case reflect.Map:
		d.mapValue(n, v, key)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, key, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			k := key + "[" + strconv.Itoa(i) + "]"
			d.lines[k] = item.Line
			d.value(item, s.Index(i), k)
		}
		v.Set(s)
	case reflect.String:
		// Any scalar reads as a string: env: {PORT: 8080} means "8080".
		if d.scalar(n, key, "a string") {
			v.SetString(n.Value)
		}
	case reflect.Int:
		if !d.scalar(n, key, "an integer") {
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if n.Tag != "!!int" || err != nil || int64(int(i)) != i {
			d.fail(n, key, "%q is not an integer", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		if !d.scalar(n, key, "true or false") {
			return
		}
		var b bool
		if n.Tag != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, key, "%q is not true or false", n.Value)
			return
		}
		v.SetBool(b)
	default:
		d.fail(n, key, "cannot read a %s", v.Type())
	}
}

func (d *decoder) scalar(n *yaml.Node, key, want string) bool {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, key, "expected %s, got %s", want, kindName(n))
		return false
	}
	return true
}

// pairs checks that n is a mapping with string keys that are not repeated,
// and returns its key/value pairs.
func (d *decoder) pairs(n *yaml.Node, key string) [][2]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		d.fail(n, key, "expected a mapping, got %s", kindName(n))
		return nil
	}
	seen := map[string]bool{}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "<<" && k.Tag == "!!merge" {
			d.fail(k, key, "keys must be plain names (merge keys and complex keys are not supported)")
			continue
		}
		if seen[k.Value] {
			d.fail(k, join(key, k.Value), "duplicate key")
			continue
		}
		seen[k.Value] = true
		out = append(out, [2]*yaml.Node{k, val})
	}
	return out
}

func (d *decoder) structValue(n *yaml.Node, v reflect.Value, key string) {
	for _, p := range d.pairs(n, key) {
		k, val := p[0], p[1]
		sub := join(key, k.Value)
		f, ok := fieldByTag(v, k.Value)
		if !ok {
			d.fail(k, sub, "unknown key")
			continue
		}
		d.lines[sub] = k.Line
		d.value(val, f, sub)
	}
}

func (d *decoder) mapValue(n *yaml.Node, v reflect.Value, key string) {
	if v.Type().Key().Kind() != reflect.String {
		d.fail(n, key, "cannot read a %s", v.Type())
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for _, p := range d.pairs(n, key) {
		k, val := p[0], p[1]
		sub := join(key, k.Value)
		d.lines[sub] = k.Line
		e := reflect.New(v.Type().Elem()).Elem()
		if old := v.MapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key())); old.IsValid() {
			e.Set(old)
		}
		d.value(val, e, sub)
		v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
	}
}

// fieldByTag finds the field of struct v whose yaml tag is name.
func fieldByTag(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" && tag == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func join(key, sub string) string {
	if key == "" {
		return sub
	}
	return key + "." + sub
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}
