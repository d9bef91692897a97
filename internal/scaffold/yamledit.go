package scaffold

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// kv is one key of a worker entry, in the order it is written.
type kv struct {
	key   string
	value *yaml.Node
}

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }

func flowList(vs ...string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
	for _, v := range vs {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v, Style: yaml.DoubleQuotedStyle})
	}
	return n
}

// addWorker returns src with the worker name added under workers:. It
// finds the place with the yaml.v3 node API and then inserts text there,
// rather than encoding the tree again, because an encoder would drop blank
// lines, re-indent and re-quote the user's file; this way every byte the
// user wrote stays as it was. The result is parsed again and must equal
// the old document plus the new worker, else the whole document is
// encoded from the node tree instead (comments survive that too, blank
// lines do not).
func addWorker(src []byte, name string, entry []kv) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parsing metro.yaml: %w", err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("metro.yaml line %d: more than one YAML document", more.Line)
	}
	var root *yaml.Node
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			root = nil // empty or only comments
		} else if root.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("metro.yaml line %d: the top level must be a mapping (name:, gateway:, workers: ...)", root.Line)
		}
	}
	var key, workers *yaml.Node
	var next *yaml.Node // the top-level key after workers, if any
	if root != nil {
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "workers" {
				key, workers = root.Content[i], root.Content[i+1]
				if i+2 < len(root.Content) {
					next = root.Content[i+2]
				}
			}
		}
	}
	if workers != nil {
		switch {
		case workers.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(workers.Content); i += 2 {
				if workers.Content[i].Value == name {
					return nil, fmt.Errorf("%w: worker %q is already in metro.yaml (line %d)", ErrExists, name, workers.Content[i].Line)
				}
			}
		case workers.Kind == yaml.ScalarNode && workers.Tag == "!!null":
		default:
			return nil, fmt.Errorf("metro.yaml line %d: workers must be a mapping from worker names to workers", workers.Line)
		}
	}

	want, err := expected(src, name, entry)
	if err != nil {
		return nil, err
	}
	for _, out := range splice(src, root, key, workers, next, name, entry) {
		if sameYAML(out, want) {
			return out, nil
		}
	}
	return reencode(&doc, root, workers, name, entry, want)
}

// splice inserts the entry as text, indented like its neighbours, and
// returns the candidates, best first: after the last line of the workers
// block that holds something, then the other lines up to the next key (a
// block scalar can hold lines that look like comments). It returns none
// where the layout is one it does not handle (a flow mapping with
// entries), leaving that to the node encoder.
func splice(src []byte, root, key, workers, next *yaml.Node, name string, entry []kv) [][]byte {
	eol := "\n"
	if bytes.Contains(src, []byte("\r\n")) {
		eol = "\r\n"
	}
	if bytes.Count(src, []byte("\r")) != bytes.Count(src, []byte("\r\n")) {
		// YAML breaks lines at a lone CR too, so its line numbers would
		// not index the lines split here: let the caller re-encode.
		return nil
	}
	lines := strings.SplitAfter(string(src), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	indent := docIndent(root)
	var at int // insert before lines[at]
	var more []int
	col := 0 // column of the worker keys, 0-based
	var head []string
	switch {
	case workers == nil:
		// No workers key: append one at the end.
		at = len(lines)
		if root != nil {
			col = root.Column - 1 + indent
		} else {
			col = indent
		}
		head = []string{strings.Repeat(" ", max(col-indent, 0)) + "workers:"}
		if at > 0 && strings.TrimSpace(lines[at-1]) != "" {
			head = append([]string{""}, head...)
		}
	case workers.Kind == yaml.MappingNode && workers.Style&yaml.FlowStyle == 0 && len(workers.Content) > 0:
		col = workers.Content[0].Column - 1
		if v := workers.Content[1]; v.Kind == yaml.MappingNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 {
			indent = v.Content[0].Column - 1 - col
		}
		end := len(lines)
		if next != nil {
			end = next.Line - 1
		}
		end = min(end, docEnd(lines, key.Line))
		// After the last line that holds something, or a comment indented
		// into the last worker: comments and blank lines further out
		// belong to the key that follows.
		at = key.Line
		for i := key.Line; i < end; i++ {
			t := strings.TrimSpace(lines[i])
			deeper := len(lines[i])-len(strings.TrimLeft(lines[i], " ")) > col
			if t != "" && (!strings.HasPrefix(t, "#") || deeper) {
				at = i + 1
			}
		}
		for i := end; i > key.Line; i-- {
			if i != at {
				more = append(more, i)
			}
		}
	case workers.Kind == yaml.ScalarNode && workers.Tag == "!!null" || workers.Kind == yaml.MappingNode && len(workers.Content) == 0:
		// "workers:", "workers: ~" or "workers: {}": the entry goes on
		// the lines below, and "~" or "{}" must go.
		col = key.Column - 1 + indent
		if workers.Line == key.Line && workers.Value != "" || workers.Kind == yaml.MappingNode {
			l := lines[key.Line-1]
			c := workers.Column - 1
			if c >= len(l) {
				return nil
			}
			rest := l[c:]
			n := len(workers.Value)
			if workers.Kind == yaml.MappingNode {
				n = strings.IndexByte(rest, '}') + 1
				if n == 0 {
					return nil
				}
			}
			if n > len(rest) {
				return nil
			}
			lines[key.Line-1] = strings.TrimRight(l[:c], " \t") + rest[n:]
			if !strings.HasSuffix(lines[key.Line-1], "\n") && key.Line < len(lines) {
				lines[key.Line-1] += eol
			}
		}
		at = key.Line
	default:
		return nil
	}

	ins := append(head, entryText(name, entry, col, indent)...)
	var outs [][]byte
	for _, at := range append([]int{at}, more...) {
		var b strings.Builder
		for i, l := range lines[:at] {
			b.WriteString(l)
			if i == at-1 && !strings.HasSuffix(l, "\n") {
				b.WriteString(eol)
			}
		}
		for _, l := range ins {
			b.WriteString(l + eol)
		}
		for _, l := range lines[at:] {
			b.WriteString(l)
		}
		outs = append(outs, []byte(b.String()))
	}
	return outs
}

// docEnd is the index of the line that ends the first document ("---" or
// "..."), or len(lines).
func docEnd(lines []string, from int) int {
	for i := from; i < len(lines); i++ {
		t := strings.TrimRight(lines[i], "\r\n")
		if t == "---" || t == "..." || strings.HasPrefix(t, "--- ") {
			return i
		}
	}
	return len(lines)
}

// docIndent is the indentation the file uses for nested mappings (2 when
// it has none).
func docIndent(root *yaml.Node) int {
	if root == nil {
		return 2
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		v := root.Content[i+1]
		if v.Kind == yaml.MappingNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 && v.Content[0].Column > root.Column {
			return v.Content[0].Column - root.Column
		}
	}
	return 2
}

// entryText writes "name:" and the entry's keys, the first at column col.
func entryText(name string, entry []kv, col, indent int) []string {
	m := entryNode(name, entry)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(max(indent, 2))
	_ = enc.Encode(m) // a tree of plain scalars always encodes
	_ = enc.Close()
	var out []string
	for _, l := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		out = append(out, strings.Repeat(" ", col)+l)
	}
	return out
}

func entryNode(name string, entry []kv) *yaml.Node {
	val := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, e := range entry {
		val.Content = append(val.Content, scalar(e.key), e.value)
	}
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{scalar(name), val}}
}

// expected is what src must decode to once the worker is added.
func expected(src []byte, name string, entry []kv) (map[string]any, error) {
	var old map[string]any
	if err := yaml.Unmarshal(src, &old); err != nil {
		return nil, fmt.Errorf("parsing metro.yaml: %w", err)
	}
	if old == nil {
		old = map[string]any{}
	}
	var e map[string]any
	if err := entryNode(name, entry).Decode(&e); err != nil {
		return nil, err
	}
	ws, _ := old["workers"].(map[string]any)
	if ws == nil {
		ws = map[string]any{}
	}
	ws[name] = e[name]
	old["workers"] = ws
	return old, nil
}

func sameYAML(b []byte, want map[string]any) bool {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var got map[string]any
	if err := dec.Decode(&got); err != nil {
		return false
	}
	var more any
	return errors.Is(dec.Decode(&more), io.EOF) && reflect.DeepEqual(got, want)
}

// reencode adds the entry to the node tree and encodes the whole document.
func reencode(doc, root, workers *yaml.Node, name string, entry []kv, want map[string]any) ([]byte, error) {
	e := entryNode(name, entry)
	switch {
	case root == nil:
		root = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		*doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}
		fallthrough
	case workers == nil:
		root.Content = append(root.Content, scalar("workers"), &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: e.Content})
	case workers.Kind == yaml.ScalarNode:
		*workers = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: e.Content, HeadComment: workers.HeadComment, LineComment: workers.LineComment}
	default:
		workers.Content = append(workers.Content, e.Content...)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(docIndent(root))
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encoding metro.yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding metro.yaml: %w", err)
	}
	if !sameYAML(buf.Bytes(), want) {
		return nil, fmt.Errorf("adding worker %q to metro.yaml: the edited file does not read back as written", name)
	}
	return buf.Bytes(), nil
}
