package tap

import (
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/recording"
	"github.com/metropolis-dev/metro/internal/wire"
)

// Recorder takes every finished exchange, bodies whole, as intake sees it:
// metro tap --record writes them to a file while the display runs.
type Recorder interface {
	Record(Exchange) error
	Flush() error
}

// SetRecorder makes Run hand every finished exchange to r before the
// display gets it. Bodies are then kept whole for r (the display still
// gets at most MaxBody of each), a streamed one up to the limit
// SetRecordMaxStream sets: past it, it is known by its length and
// digest. Call it before Run.
func (in *Intake) SetRecorder(r Recorder) {
	in.recorder = r
	in.pairer.maxBody = -1
}

// SetRecordMaxStream sets the largest streamed body recorded whole;
// DefaultRecordMaxStream when n <= 0.
func (in *Intake) SetRecordMaxStream(n int) {
	if n <= 0 {
		n = DefaultRecordMaxStream
	}
	in.pairer.recordMaxStream = n
}

// FileRecorder writes exchanges to a recording (see package recording).
type FileRecorder struct{ w *recording.Writer }

// NewFileRecorder returns a Recorder writing to w, with the values of
// the default secret headers and of those named in redact replaced.
func NewFileRecorder(w io.Writer, redact []string) *FileRecorder {
	return &FileRecorder{w: recording.NewWriter(w, redact)}
}

// Record implements Recorder. Exchanges still pending are not written.
func (r *FileRecorder) Record(ex Exchange) error {
	if ex.Outcome == Pending || ex.Outcome == Lost {
		return nil
	}
	return r.w.Write(ToRecording(ex))
}

// Flush implements Recorder.
func (r *FileRecorder) Flush() error { return r.w.Flush() }

// ToRecording turns a finished exchange into its recorded form: the
// request's HTTP headers (the protocol's own Metro-* headers are fields
// of their own or mean nothing later, such as a deadline), and the reply
// as an HTTP client got it (PROTOCOL.md section 3).
func ToRecording(ex Exchange) recording.Exchange {
	out := recording.Exchange{
		Time:        ex.Time,
		Subject:     ex.Subject,
		Method:      ex.Method,
		Path:        ex.Path,
		Query:       ex.Query,
		Route:       ex.Route,
		RequestID:   ex.RequestID,
		Worker:      ex.Worker,
		LatencyMS:   float64(ex.Latency.Microseconds()) / 1000,
		Outcome:     ex.Outcome.String(),
		Error:       ex.Error,
		Request:     recordBody(recording.Message{Header: httpHeader(ex.Request.Header)}, ex.Request, ex.Request.Body),
		Claims:      nats.Header(ex.Request.Header).Get(wire.HeaderClaims),
		StreamError: ex.StreamError,
	}
	if ex.Outcome != OK {
		return out
	}
	rep, err := wire.ReadReply(&nats.Msg{Header: nats.Header(ex.Response.Header), Data: ex.Response.Body}, ex.RequestID, nil)
	if err != nil {
		// A malformed reply reached the client as the gateway's 502.
		rep = wire.Reply{Status: http.StatusBadGateway, Header: http.Header{"Content-Type": {wire.ProblemContentType}},
			Body: wire.NewProblem(http.StatusBadGateway, fmt.Sprint(err), ex.RequestID).Body()}
	}
	out.Status = rep.Status
	if len(rep.Header) == 0 {
		rep.Header = nil
	}
	reply := recordBody(recording.Message{Header: rep.Header}, ex.Response, rep.Body)
	out.Reply = &reply
	return out
}

// recordBody sets the body of a recorded message: whole, or, for a
// streamed body kept only in part, its length and digest, so that a
// replay can still tell whether a reply is the same.
func recordBody(out recording.Message, msg Message, body []byte) recording.Message {
	out.Parts = msg.Parts
	if msg.Streamed() && msg.Truncated() && msg.SHA256 != "" {
		out.Omitted = &recording.Omitted{Length: msg.Size, SHA256: msg.SHA256}
		return out
	}
	out.Body = body
	return out
}

func httpHeader(h map[string][]string) http.Header {
	var out http.Header
	for k, vs := range h {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if strings.HasPrefix(ck, "Metro-") || strings.HasPrefix(ck, "Nats-") || len(vs) == 0 {
			continue
		}
		if out == nil {
			out = http.Header{}
		}
		out[ck] = append(out[ck], vs...)
	}
	return out
}
