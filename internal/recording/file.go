package recording

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/metropolis-dev/metro/internal/subject"
)

// Writer writes exchanges as NDJSON, redacting secret headers first.
// It is not safe for concurrent use.
type Writer struct {
	bw     *bufio.Writer
	enc    *json.Encoder
	redact redactor
}

// NewWriter returns a Writer to w that replaces the values of the
// DefaultRedact headers and of the headers named in redact.
func NewWriter(w io.Writer, redact []string) *Writer {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &Writer{bw: bw, enc: enc, redact: newRedactor(redact)}
}

// Write writes one exchange as one line. Redaction works on copies: ex
// itself is not changed.
func (w *Writer) Write(ex Exchange) error {
	ex.Request.Header = w.redact.header(ex.Request.Header)
	if ex.Reply != nil {
		rep := *ex.Reply
		rep.Header = w.redact.header(rep.Header)
		ex.Reply = &rep
	}
	if err := w.enc.Encode(ex); err != nil {
		return fmt.Errorf("writing a recorded exchange: %w", err)
	}
	return nil
}

// Flush writes what is buffered to the underlying writer.
func (w *Writer) Flush() error {
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("writing the recording: %w", err)
	}
	return nil
}

// LineError is a mistake in a recording, at a line of a file.
type LineError struct {
	File string // "" when read from a stream without a name
	Line int
	Err  error
}

func (e *LineError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// ErrEmpty is returned for a recording without a single exchange.
var ErrEmpty = errors.New("holds no exchange")

// ReadFile reads the recording at path.
func ReadFile(path string) ([]Exchange, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the recording: %w", err)
	}
	defer f.Close()
	exs, err := Read(f, path)
	if errors.Is(err, ErrEmpty) {
		return nil, fmt.Errorf("%s %w", path, err)
	}
	return exs, err
}

// Read reads every exchange of r; name is the file named in errors. Blank
// lines are skipped; anything else that is not a well-formed exchange is
// a *LineError.
func Read(r io.Reader, name string) ([]Exchange, error) {
	br := bufio.NewReader(r)
	var out []Exchange
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		eof := err != nil
		if len(bytes.TrimSpace(b)) > 0 {
			ex, perr := Parse(b)
			if perr != nil {
				if eof && !bytes.HasSuffix(b, []byte("\n")) && isCutShort(perr) {
					perr = fmt.Errorf("%w (the last line is cut short: was the file truncated?)", perr)
				}
				return nil, &LineError{File: name, Line: line, Err: perr}
			}
			ex.Line = line
			out = append(out, ex)
		}
		if eof {
			break
		}
	}
	if len(out) == 0 {
		return nil, ErrEmpty
	}
	return out, nil
}

func isCutShort(err error) bool {
	var se *json.SyntaxError
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &se) && strings.Contains(se.Error(), "unexpected end")
}

// Parse reads one line: one exchange, checked.
func Parse(line []byte) (Exchange, error) {
	var raw rawExchange
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return Exchange{}, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Exchange{}, errors.New("more than one JSON value on the line (one exchange per line)")
	}
	ex := Exchange(raw.exchangeFields)
	if len(raw.Request) == 0 || string(raw.Request) == "null" {
		return Exchange{}, errors.New("request: missing")
	}
	if err := ex.Request.UnmarshalJSON(raw.Request); err != nil {
		return Exchange{}, fmt.Errorf("request: %w", jsonError(err))
	}
	if len(raw.Reply) > 0 && string(raw.Reply) != "null" {
		ex.Reply = new(Message)
		if err := ex.Reply.UnmarshalJSON(raw.Reply); err != nil {
			return Exchange{}, fmt.Errorf("reply: %w", jsonError(err))
		}
	}
	if err := ex.check(); err != nil {
		return Exchange{}, err
	}
	return ex, nil
}

// exchangeFields is Exchange without its methods, so that rawExchange
// can take the two messages apart and name them in errors.
type exchangeFields Exchange

type rawExchange struct {
	exchangeFields
	Request json.RawMessage `json:"request"`
	Reply   json.RawMessage `json:"reply"`
}

// jsonError rewords encoding/json's errors to name the field.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return fmt.Errorf("%s: a JSON %s where %s belongs", strings.TrimPrefix(te.Field, "exchangeFields."), te.Value, typeName(te.Type.Kind().String()))
	case errors.As(err, &te):
		return fmt.Errorf("a JSON %s where an exchange object belongs", te.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("not a whole JSON object: %w", io.ErrUnexpectedEOF)
	case errors.As(err, &se):
		return fmt.Errorf("not valid JSON at byte %d: %w", se.Offset, err)
	}
	return err
}

func typeName(kind string) string {
	switch kind {
	case "int", "int64", "float64":
		return "a number"
	case "string":
		return "a string"
	case "map":
		return "an object"
	case "slice":
		return "an array"
	case "struct", "ptr":
		return "an object"
	}
	return kind
}

// check holds an exchange to what tap writes, so that a hand edit that
// replay or mock would misread is reported where it is.
func (e *Exchange) check() error {
	if e.Subject == "" {
		return errors.New("subject: missing")
	}
	switch {
	case e.Method == "" && e.Path == "":
	case e.Method == "":
		return errors.New("method: missing (path is set)")
	case !subject.ValidMethod(e.Method):
		return fmt.Errorf("method: %q is not an upper-case A-Z token", e.Method)
	case !strings.HasPrefix(e.Path, "/"):
		return fmt.Errorf("path: %q must start with /", e.Path)
	}
	if strings.ContainsAny(e.Path+e.Query, " \t\r\n") {
		return errors.New("path and query: white space must be percent-encoded")
	}
	switch e.Outcome {
	case OutcomeOK:
		if e.Reply == nil {
			return errors.New("reply: missing (outcome is ok)")
		}
		if e.Status < 100 || e.Status > 599 {
			return fmt.Errorf("status: %d is not an HTTP status (100 to 599)", e.Status)
		}
	case OutcomeTimeout, OutcomeNoResponders, OutcomePublished:
		if e.Reply != nil {
			return fmt.Errorf("reply: present, but outcome is %s", e.Outcome)
		}
	case "":
		return errors.New("outcome: missing")
	default:
		return fmt.Errorf("outcome: %q is not one of ok, timeout, no_responders, published", e.Outcome)
	}
	if err := checkHeader("request.headers", e.Request.Header); err != nil {
		return err
	}
	if e.Reply != nil {
		return checkHeader("reply.headers", e.Reply.Header)
	}
	return nil
}

func checkHeader(field string, h map[string][]string) error {
	for k, vs := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("%s: %q is not a header name", field, k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("%s: %s: %q holds a control character", field, k, v)
			}
		}
	}
	return nil
}
