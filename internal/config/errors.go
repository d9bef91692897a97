package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// ErrNotFound is returned by Find and LoadDir when no metro.yaml exists in
// the directory or any parent.
var ErrNotFound = errors.New("no " + FileName + " found (searched this directory and its parents)")

// Error is one mistake in a metro.yaml, located by file, line and dotted
// key path ("workers.catalog.replicas"). Line is 0 when unknown (a Config
// built in code); Key is "" for syntax errors; Source names the
// environment variable or flag when the bad value came from there instead
// of the file.
type Error struct {
	File   string
	Line   int
	Key    string
	Source string
	Msg    string
}

func (e *Error) Error() string {
	var s string
	switch {
	case e.Source != "":
		s = e.Source + ": "
	case e.File != "" && e.Line > 0:
		s = e.File + ":" + strconv.Itoa(e.Line) + ": "
	case e.File != "":
		s = e.File + ": "
	}
	if e.Key != "" && e.Source == "" {
		s += e.Key + ": "
	}
	return s + e.Msg
}

// Errorf returns an *Error about key, located where the file sets it (or
// where its nearest parent key is set, when the file leaves it to the
// default), or naming the flag that set it (see SetBy). Other packages use
// it so that their checks of the config read like the loader's own.
func (c *Config) Errorf(key, format string, args ...any) error {
	e := &Error{File: c.Path, Key: key, Msg: fmt.Sprintf(format, args...)}
	for k := key; k != ""; k = parentKey(k) {
		if src, ok := c.setBy[k]; ok {
			e.Source = src
			return e
		}
	}
	e.Line = c.Line(key)
	return e
}

// SetBy records that source (a flag, e.g. "--listen") set key, so that a
// problem with its value names the flag, where the user must fix it, not
// the file's line that no longer applies.
func (c *Config) SetBy(key, source string) {
	if c.setBy == nil {
		c.setBy = map[string]string{}
	}
	c.setBy[key] = source
}

// Line returns the line where key is set in the file, else the line of its
// nearest parent that is, else 0.
func (c *Config) Line(key string) int {
	for k := key; k != ""; k = parentKey(k) {
		if l, ok := c.lines[k]; ok {
			return l
		}
	}
	return 0
}

// Has reports whether the file sets key explicitly.
func (c *Config) Has(key string) bool {
	_, ok := c.lines[key]
	return ok
}

// chose reports whether the user set key: in the file, by a flag or by
// an environment variable, rather than leaving it to the default.
func (c *Config) chose(key string) bool {
	_, set := c.setBy[key]
	return set || c.Has(key)
}

func parentKey(k string) string {
	for i := len(k) - 1; i >= 0; i-- {
		switch k[i] {
		case '.':
			return k[:i]
		case '[':
			return k[:i]
		}
	}
	return ""
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// syntaxError turns a yaml.v3 parse error ("yaml: line 3: mapping values
// are not allowed in this context") into an *Error with the line lifted out.
func syntaxError(file string, err error) error {
	e := &Error{File: file, Msg: err.Error()}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = m[2]
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		e.Msg = te.Errors[0]
	}
	return e
}
