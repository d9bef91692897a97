package metrotest

import (
	"bufio"
	"io"
	"strings"
)

// Event is one block of a text/event-stream: the lines up to a blank
// line, as the HTML standard's "event stream interpretation" reads them,
// with comment lines kept (a client ignores them; a test wants to see a
// keepalive).
type Event struct {
	ID, Type, Data string
	Comments       []string
}

// Events reads server-sent events from a response body as they arrive.
type Events struct {
	r *bufio.Reader
}

// NewEvents reads the event stream r.
func NewEvents(r io.Reader) *Events { return &Events{r: bufio.NewReader(r)} }

// Next blocks until the next block has arrived whole; at the end of the
// stream it returns io.EOF, or io.ErrUnexpectedEOF inside a block.
func (e *Events) Next() (Event, error) {
	var ev Event
	var data []string
	lines := 0
	for {
		line, err := e.r.ReadString('\n')
		if err != nil {
			if err == io.EOF && lines > 0 || line != "" {
				err = io.ErrUnexpectedEOF
			}
			return ev, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if lines == 0 {
				continue
			}
			ev.Data = strings.Join(data, "\n")
			return ev, nil
		}
		lines++
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			ev.Comments = append(ev.Comments, value)
		case "id":
			ev.ID = value
		case "event":
			ev.Type = value
		case "data":
			data = append(data, value)
		}
	}
}
