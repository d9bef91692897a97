package subject

import (
	"strings"
)

// PartKind tells what one segment of a route pattern matches.
type PartKind uint8

const (
	Literal PartKind = iota // exactly this segment
	Param                   // any one segment: {id}, subscribed as "*"
	Tail                    // the rest of the path: {path...}, subscribed as ">"
)

// Part is one segment of a route pattern.
type Part struct {
	Kind  PartKind
	Value string // the decoded literal, or the wildcard's name
}

// Route is a parsed route pattern in Go 1.22 ServeMux syntax, restricted to
// what a subject can express: no host, wildcards are whole segments.
type Route struct {
	Method string // "" matches every method
	Parts  []Part
}

// ParsePattern parses "METHOD /path" or "/path". As in ServeMux, a trailing
// slash or a {name...} wildcard makes a tail ("/" alone matches every path)
// and {$} ends a pattern exactly ("/{$}" is the root alone).
func ParsePattern(pattern string) (Route, error) {
	var r Route
	rest := pattern
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		r.Method, rest = pattern[:i], strings.TrimLeft(pattern[i:], " \t")
		if !ValidMethod(r.Method) {
			return r, fail(ErrPattern, "%q: method %q is not an A-Z token", pattern, r.Method)
		}
	}
	if !strings.HasPrefix(rest, "/") {
		return r, fail(ErrPattern, "%q: path must start with / (hosts are not supported)", pattern)
	}
	segs := strings.Split(rest[1:], "/")
	var names []string
	for i, s := range segs {
		last := i == len(segs)-1
		switch {
		case s == "" && last:
			r.Parts = append(r.Parts, Part{Kind: Tail})
		case s == "":
			return r, fail(ErrPattern, "%q: empty segment", pattern)
		case s == "{$}":
			if !last {
				return r, fail(ErrPattern, "%q: {$} must end the pattern", pattern)
			}
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			name, tail := strings.CutSuffix(s[1:len(s)-1], "...")
			if !validName(name) {
				return r, fail(ErrPattern, "%q: wildcard %q is not a Go identifier", pattern, s)
			}
			if tail && !last {
				return r, fail(ErrPattern, "%q: %s must be the last segment", pattern, s)
			}
			// ServeMux refuses a pattern that names a wildcard twice, so a
			// worker could not register it.
			for _, n := range names {
				if n == name {
					return r, fail(ErrPattern, "%q: wildcard name %q used twice", pattern, name)
				}
			}
			names = append(names, name)
			kind := Param
			if tail {
				kind = Tail
			}
			r.Parts = append(r.Parts, Part{Kind: kind, Value: name})
		case strings.ContainsAny(s, "{}"):
			return r, fail(ErrPattern, "%q: a wildcard must be a whole segment", pattern)
		default:
			var dec []byte
			dec, err := appendDecoded(dec, s)
			if err != nil {
				return r, fail(ErrPattern, "%q: %v", pattern, err)
			}
			if d := string(dec); d == "." || d == ".." {
				return r, fail(ErrPattern, "%q: dot segment", pattern)
			}
			r.Parts = append(r.Parts, Part{Kind: Literal, Value: string(dec)})
		}
	}
	if n := len(r.Parts); n > MaxSegments && !(n == MaxSegments+1 && r.HasTail()) {
		// No request path has that many segments, so it could never match.
		return r, fail(ErrPattern, "%q: over %d segments", truncate(pattern), MaxSegments)
	}
	return r, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// HasTail reports whether the route ends in a tail wildcard.
func (r Route) HasTail() bool {
	return len(r.Parts) > 0 && r.Parts[len(r.Parts)-1].Kind == Tail
}

// Subscription returns the NATS subject that receives every request the
// route can match: literals as tokens, {x} as "*", a tail as ">" (which
// also covers the method token), and "*" for a route without a method.
func (r Route) Subscription(prefix string) (string, error) {
	if r.HasTail() && len(r.Parts) == 1 && prefix == "" {
		return "", fail(ErrPattern, "%q would subscribe to every subject; use /{$} for the root alone, start with a literal segment, or set a prefix", r.String())
	}
	if prefix == "" && len(r.Parts) > 0 && r.Parts[0].Kind != Literal {
		// A subscription that starts with a wildcard also receives NATS's
		// own subjects: "*.>" gets every reply inbox and $SRV request, and
		// NATS has no way to subscribe to a wildcard minus some subjects.
		return "", fail(ErrPattern, "%q starts with a wildcard, so its subscription would also receive NATS's own subjects ($SRV.*, _INBOX.*); start with a literal segment or set a prefix", r.String())
	}
	var b []byte
	if prefix != "" {
		b = append(b, prefix...)
		b = append(b, '.')
	}
	for i, p := range r.Parts {
		switch p.Kind {
		case Literal:
			if i == 0 && prefix == "" && strings.EqualFold(p.Value, "_INBOX") {
				return "", fail(ErrPattern, "%q: a route may not start with _INBOX", r.String())
			}
			for j := 0; j < len(p.Value); j++ {
				b = AppendTokenByte(b, p.Value[j])
			}
		case Param:
			b = append(b, '*')
		case Tail:
			b = append(b, '>')
			return checkSubscription(r, b)
		}
		b = append(b, '.')
	}
	if r.Method == "" {
		b = append(b, '*')
	} else {
		b = append(b, r.Method...)
	}
	return checkSubscription(r, b)
}

func checkSubscription(r Route, b []byte) (string, error) {
	if len(b) > MaxSubjectBytes {
		return "", fail(ErrPattern, "%q: subscription would be %d bytes, over %d", truncate(r.String()), len(b), MaxSubjectBytes)
	}
	return string(b), nil
}

// String formats the route as a ServeMux pattern.
func (r Route) String() string {
	var b strings.Builder
	if r.Method != "" {
		b.WriteString(r.Method)
		b.WriteByte(' ')
	}
	if len(r.Parts) == 0 {
		b.WriteString("/{$}")
	}
	for _, p := range r.Parts {
		b.WriteByte('/')
		switch p.Kind {
		case Literal:
			b.WriteString(EscapePath([]string{p.Value})[1:])
		case Param:
			b.WriteString("{" + p.Value + "}")
		case Tail:
			if p.Value != "" {
				b.WriteString("{" + p.Value + "...}")
			}
		}
	}
	return b.String()
}

// RouteFromSubscription reads a route back from a subscription subject, for
// services that announce no metro metadata: "sum.POST" is "POST /sum",
// "users.*.GET" is "GET /users/{p1}", "files.>" is "/files/{rest...}".
func RouteFromSubscription(prefix, subj string) (Route, error) {
	var r Route
	if prefix != "" {
		var ok bool
		if subj, ok = strings.CutPrefix(subj, prefix+"."); !ok {
			return r, fail(ErrSubject, "subject %q lacks prefix %q", subj, prefix)
		}
	}
	toks := strings.Split(subj, ".")
	last := toks[len(toks)-1]
	switch {
	case last == ">":
		toks = toks[:len(toks)-1]
	case last == "*":
		toks = toks[:len(toks)-1]
	case ValidMethod(last):
		r.Method = last
		toks = toks[:len(toks)-1]
	default:
		return r, fail(ErrSubject, "subject %q does not end in a method, * or >", truncate(subj))
	}
	if len(toks) > MaxSegments {
		return r, fail(ErrSubject, "subject %q has too many tokens", truncate(subj))
	}
	if prefix == "" && len(toks) > 0 && toks[0] == "*" {
		return r, fail(ErrSubject, "subject %q starts with a wildcard, which also covers NATS's own subjects", truncate(subj))
	}
	params := 0
	for _, t := range toks {
		if t == "*" {
			params++
			r.Parts = append(r.Parts, Part{Kind: Param, Value: "p" + itoa(params)})
			continue
		}
		s, err := DecodeToken(t)
		if err != nil {
			return r, err
		}
		if s == "." || s == ".." {
			return r, fail(ErrSubject, "subject %q has a dot segment", truncate(subj))
		}
		if len(r.Parts) == 0 && prefix == "" && isInbox(t) {
			return r, fail(ErrSubject, "subject %q is in the inbox space", truncate(subj))
		}
		r.Parts = append(r.Parts, Part{Kind: Literal, Value: s})
	}
	if last == ">" {
		if len(r.Parts) == 0 && prefix == "" {
			return r, fail(ErrSubject, "subject %q covers every subject", subj)
		}
		r.Parts = append(r.Parts, Part{Kind: Tail, Value: "rest"})
	}
	return r, nil
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// Matches reports whether a NATS subscription subject sub receives subj,
// with NATS wildcard rules: "*" is one token, ">" one or more.
func Matches(sub, subj string) bool {
	for {
		var st, tt string
		st, sub, _ = strings.Cut(sub, ".")
		if st == ">" {
			return subj != ""
		}
		if subj == "" {
			return false
		}
		var more bool
		tt, subj, more = strings.Cut(subj, ".")
		if st != "*" && st != tt {
			return false
		}
		if sub == "" {
			return !more
		}
		if !more {
			return false
		}
	}
}
