// Package subject is the one place that knows how an HTTP method and path
// become a NATS subject and back (PROTOCOL.md section 1), and how a route
// pattern such as "GET /users/{id}" becomes the subscription "users.*.GET".
//
// Every path segment is percent-decoded and re-encoded as a token in which
// only A-Z a-z 0-9 - _ ~ stand for themselves; every other byte is %XX.
// That keeps tokens free of '.', '*', '>', '$' and white space, makes the
// mapping injective and lets it be reversed exactly.
package subject

import (
	"errors"
	"fmt"
	"strings"
)

// Limits from PROTOCOL.md section 1.
const (
	MaxPathBytes   = 4096
	MaxSegments    = 64
	MaxMethodBytes = 20

	// MaxSubjectBytes bounds a whole subject, prefix included. nats-server
	// closes a client whose protocol line (HPUB subject reply sizes) is over
	// max_control_line, 4096 bytes by default, so one request whose path
	// expands on encoding (each "!" becomes "%21") would otherwise cut the
	// gateway off NATS. The margin leaves room for the reply inbox and sizes.
	MaxSubjectBytes = 3840
)

// Errors callers branch on; each maps to one HTTP status.
var (
	ErrMalformed = errors.New("malformed path")      // 400
	ErrMethod    = errors.New("invalid method")      // 405
	ErrTooLong   = errors.New("path too long")       // 414
	ErrSubject   = errors.New("not a metro subject") // from Parse
	ErrPattern   = errors.New("invalid route pattern")
)

// Error says what was wrong with one input; it unwraps to one of the
// sentinel errors above.
type Error struct {
	Err    error
	Reason string
}

func (e *Error) Error() string { return e.Err.Error() + ": " + e.Reason }
func (e *Error) Unwrap() error { return e.Err }

func fail(err error, format string, args ...any) error {
	return &Error{Err: err, Reason: fmt.Sprintf(format, args...)}
}

const upperHex = "0123456789ABCDEF"

// unreserved bytes stand for themselves in a token.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '~'
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// ValidMethod reports whether m is an upper-case token of 1 to 20 letters.
func ValidMethod(m string) bool {
	if len(m) == 0 || len(m) > MaxMethodBytes {
		return false
	}
	for i := 0; i < len(m); i++ {
		if m[i] < 'A' || m[i] > 'Z' {
			return false
		}
	}
	return true
}

// Append appends to dst the subject for method and the escaped path of a
// request (Go: r.URL.EscapedPath()). It allocates nothing beyond growing dst.
// On error it returns dst as it was, so a caller can reuse its buffer.
func Append(dst []byte, prefix, method, escapedPath string) ([]byte, error) {
	orig := len(dst)
	out, err := appendSubject(dst, prefix, method, escapedPath)
	if err != nil {
		return out[:orig], err
	}
	if n := len(out) - orig; n > MaxSubjectBytes {
		return out[:orig], fail(ErrTooLong, "subject would be %d bytes, over %d", n, MaxSubjectBytes)
	}
	return out, nil
}

func appendSubject(dst []byte, prefix, method, escapedPath string) ([]byte, error) {
	if !ValidMethod(method) {
		return dst, fail(ErrMethod, "method %q is not an A-Z token of 1 to %d letters", truncate(method), MaxMethodBytes)
	}
	if len(escapedPath) > MaxPathBytes {
		return dst, fail(ErrTooLong, "path is %d bytes, over %d", len(escapedPath), MaxPathBytes)
	}
	if prefix != "" {
		dst = append(dst, prefix...)
		dst = append(dst, '.')
	}
	segments := 0
	p := escapedPath
	for len(p) > 0 {
		var seg string
		if i := strings.IndexByte(p, '/'); i >= 0 {
			seg, p = p[:i], p[i+1:]
		} else {
			seg, p = p, ""
		}
		if seg == "" {
			continue
		}
		segments++
		if segments > MaxSegments {
			return dst, fail(ErrTooLong, "path has more than %d segments", MaxSegments)
		}
		start := len(dst)
		var err error
		if dst, err = appendToken(dst, seg); err != nil {
			return dst, err
		}
		tok := dst[start:]
		if isDots(tok) {
			return dst, fail(ErrMalformed, "segment %q is a dot segment", seg)
		}
		if segments == 1 && prefix == "" && isInbox(tok) {
			return dst, fail(ErrMalformed, "path may not start with _INBOX")
		}
		dst = append(dst, '.')
	}
	return append(dst, method...), nil
}

// FromPath returns the subject for method and escapedPath.
func FromPath(prefix, method, escapedPath string) (string, error) {
	b, err := Append(make([]byte, 0, len(prefix)+len(escapedPath)+len(method)+8), prefix, method, escapedPath)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// appendToken percent-decodes one escaped segment and appends it as a token.
func appendToken(dst []byte, seg string) ([]byte, error) { return appendSegment(dst, seg, true) }

// appendDecoded percent-decodes one escaped segment and appends its bytes.
func appendDecoded(dst []byte, seg string) ([]byte, error) { return appendSegment(dst, seg, false) }

func appendSegment(dst []byte, seg string, asToken bool) ([]byte, error) {
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c == '%' {
			if i+2 >= len(seg) {
				return dst, fail(ErrMalformed, "truncated escape in %q", seg)
			}
			hi, ok1 := unhex(seg[i+1])
			lo, ok2 := unhex(seg[i+2])
			if !ok1 || !ok2 {
				return dst, fail(ErrMalformed, "invalid escape %q", seg[i:i+3])
			}
			c = hi<<4 | lo
			i += 2
		}
		if asToken {
			dst = AppendTokenByte(dst, c)
		} else {
			dst = append(dst, c)
		}
	}
	return dst, nil
}

// AppendTokenByte appends one decoded byte as it is written in a token.
func AppendTokenByte(dst []byte, c byte) []byte {
	if unreserved(c) {
		return append(dst, c)
	}
	return append(dst, '%', upperHex[c>>4], upperHex[c&15])
}

// Token encodes one decoded path segment as a subject token.
func Token(segment string) string {
	b := make([]byte, 0, len(segment)+8)
	for i := 0; i < len(segment); i++ {
		b = AppendTokenByte(b, segment[i])
	}
	return string(b)
}

// isInbox reports whether a first token would put a request among the reply
// subjects of NATS clients, in any case form (both spellings are common).
func isInbox[T string | []byte](tok T) bool {
	const inbox = "_INBOX"
	if len(tok) != len(inbox) {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != inbox[i] {
			return false
		}
	}
	return true
}

func isDots(tok []byte) bool {
	// "." and ".." are encoded as %2E and %2E%2E.
	s := string(tok)
	return s == "%2E" || s == "%2E%2E"
}

// DecodeToken reverses Token: it returns the decoded segment, or ErrSubject
// when tok is not a token this package could have written.
func DecodeToken(tok string) (string, error) {
	if tok == "" {
		return "", fail(ErrSubject, "empty token")
	}
	i := 0
	for i < len(tok) && unreserved(tok[i]) {
		i++
	}
	if i == len(tok) {
		return tok, nil // most tokens need no decoding, and then no copy
	}
	b := make([]byte, i, len(tok))
	copy(b, tok)
	for ; i < len(tok); i++ {
		c := tok[i]
		switch {
		case unreserved(c):
			b = append(b, c)
		case c == '%' && i+2 < len(tok):
			hi, ok1 := unhexUpper(tok[i+1])
			lo, ok2 := unhexUpper(tok[i+2])
			v := hi<<4 | lo
			if !ok1 || !ok2 || unreserved(v) {
				// Only the canonical form is accepted, so that the mapping
				// stays one to one.
				return "", fail(ErrSubject, "token %q has a non-canonical escape", truncate(tok))
			}
			b = append(b, v)
			i += 2
		default:
			return "", fail(ErrSubject, "token %q has byte %q", truncate(tok), c)
		}
	}
	return string(b), nil
}

func unhexUpper(c byte) (byte, bool) {
	if 'a' <= c && c <= 'f' {
		return 0, false
	}
	return unhex(c)
}

// Parse reverses FromPath: it splits a subject into its method and decoded
// path segments. prefix must match the subject's leading tokens. A subject
// that FromPath could not have written is ErrSubject, so whatever Parse
// accepts maps back to the same subject.
func Parse(prefix, subj string) (method string, segments []string, err error) {
	if len(subj) > MaxSubjectBytes {
		return "", nil, fail(ErrSubject, "subject is %d bytes, over %d", len(subj), MaxSubjectBytes)
	}
	full := subj
	if prefix != "" {
		if len(subj) <= len(prefix) || subj[len(prefix)] != '.' || subj[:len(prefix)] != prefix {
			return "", nil, fail(ErrSubject, "subject %q lacks prefix %q", truncate(full), prefix)
		}
		subj = subj[len(prefix)+1:]
	}
	rest, method, hasPath := "", subj, false
	if i := strings.LastIndexByte(subj, '.'); i >= 0 {
		rest, method, hasPath = subj[:i], subj[i+1:], true
	}
	if !ValidMethod(method) {
		return "", nil, fail(ErrSubject, "subject %q does not end in a method", truncate(full))
	}
	if !hasPath {
		return method, []string{}, nil
	}
	n := strings.Count(rest, ".") + 1
	if n > MaxSegments {
		return "", nil, fail(ErrSubject, "subject %q has too many tokens", truncate(full))
	}
	segments = make([]string, 0, n)
	for more := true; more; {
		var t string
		t, rest, more = strings.Cut(rest, ".")
		s, err := DecodeToken(t)
		if err != nil {
			return "", nil, err
		}
		if s == "." || s == ".." {
			return "", nil, fail(ErrSubject, "subject %q has a dot segment", truncate(full))
		}
		if len(segments) == 0 && prefix == "" && isInbox(t) {
			return "", nil, fail(ErrSubject, "subject %q is in the inbox space", truncate(full))
		}
		segments = append(segments, s)
	}
	return method, segments, nil
}

// Foreign reports whether subj lies outside the subject space of requests
// under prefix: it lacks the prefix, does not end in a method token, or
// (without a prefix) starts in NATS's own space, a "$" subject or a reply
// inbox. Such a message is no request at all, as opposed to one whose
// path is malformed.
func Foreign(prefix, subj string) bool {
	if prefix != "" {
		rest, ok := strings.CutPrefix(subj, prefix+".")
		if !ok {
			return true
		}
		subj = rest
	}
	if !ValidMethod(subj[strings.LastIndexByte(subj, '.')+1:]) {
		return true
	}
	if prefix != "" {
		return false
	}
	first, _, _ := strings.Cut(subj, ".")
	return strings.HasPrefix(first, "$") || isInbox(first)
}

// EscapePath joins decoded segments into an escaped path, "/" for none.
// Bytes that are not unreserved or sub-delims are percent-encoded, so
// Append(EscapePath(segs)) yields the same tokens as segs.
func EscapePath(segments []string) string {
	if len(segments) == 0 {
		return "/"
	}
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		for i := 0; i < len(s); i++ {
			c := s[i]
			if unreserved(c) || strings.IndexByte("!$&'()*+,;=:@.", c) >= 0 {
				b.WriteByte(c)
			} else {
				b.WriteByte('%')
				b.WriteByte(upperHex[c>>4])
				b.WriteByte(upperHex[c&15])
			}
		}
	}
	return b.String()
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// CheckPrefix reports whether p can prefix every subject: dot-separated
// NATS tokens, none a wildcard, none with white space, not starting with $
// (system subjects) nor _INBOX (replies). Empty means no prefix.
func CheckPrefix(p string) error {
	if p == "" {
		return nil
	}
	for i, tok := range strings.Split(p, ".") {
		switch {
		case tok == "":
			return fmt.Errorf("%q has an empty token", p)
		case tok == "*" || tok == ">":
			return fmt.Errorf("%q contains a wildcard", p)
		case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '*' || r == '>' }):
			return fmt.Errorf("%q contains white space, a control character or a wildcard", p)
		case i == 0 && strings.HasPrefix(tok, "$"):
			return fmt.Errorf("%q starts with $, which NATS keeps for system subjects", p)
		case i == 0 && strings.EqualFold(tok, "_INBOX"):
			return fmt.Errorf("%q starts with _INBOX, where replies go", p)
		}
	}
	return nil
}
