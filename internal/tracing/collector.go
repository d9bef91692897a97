package tracing

import (
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/metropolis-dev/metro/internal/wire"
)

// Paths served by a Collector.
const (
	// TracesPath is where OTLP/HTTP exporters post spans (the OTLP
	// specification's default path).
	TracesPath = "/v1/traces"
	// LookupPath + ID answers a Trace as JSON, by trace id or request id.
	LookupPath = "/traces/"
)

// maxExport bounds one OTLP request body, decompressed.
const maxExport = 32 << 20

// Collector is metro dev's OTLP/HTTP receiver: processes export spans to
// it, it keeps them in a Buffer, and `metro trace` looks traces up in it.
// It listens on loopback only.
type Collector struct {
	buf  *Buffer
	fwd  *Forward // nil: keep spans here only
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// StartCollector listens on addr (use "127.0.0.1:0") and serves until
// Close; with fwd, every export it takes is also passed on there.
func StartCollector(addr string, buf *Buffer, fwd ...*Forward) (*Collector, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errorf("trace collector listener on %s: %w", addr, err)
	}
	c := &Collector{buf: buf, ln: ln, done: make(chan struct{})}
	if len(fwd) > 0 {
		c.fwd = fwd[0]
	}
	c.srv = &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(c.done)
		_ = c.srv.Serve(ln)
	}()
	return c, nil
}

// URL is the collector's base URL, http://127.0.0.1:PORT.
func (c *Collector) URL() string { return "http://" + c.ln.Addr().String() }

// TracesEndpoint is the URL OTLP/HTTP exporters post to.
func (c *Collector) TracesEndpoint() string { return c.URL() + TracesPath }

// Close stops the collector and waits for it.
func (c *Collector) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := c.srv.Shutdown(ctx)
	<-c.done
	return err
}

// Handler serves the OTLP receiver and the trace lookup.
func (c *Collector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+TracesPath, c.export)
	mux.HandleFunc("GET "+LookupPath+"{id}", c.lookup)
	return mux
}

func (c *Collector) export(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = http.MaxBytesReader(w, r.Body, maxExport)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(body)
		if err != nil {
			wire.WriteProblem(w, http.StatusBadRequest, "reading gzip body: "+err.Error(), "", 0)
			return
		}
		defer zr.Close()
		body = io.LimitReader(zr, maxExport)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		wire.WriteProblem(w, http.StatusBadRequest, "reading body: "+err.Error(), "", 0)
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var req coltracepb.ExportTraceServiceRequest
	isJSON := ct == "application/json"
	switch {
	case isJSON:
		err = protojson.Unmarshal(b, &req)
	case ct == "application/x-protobuf" || ct == "":
		err = proto.Unmarshal(b, &req)
	default:
		wire.WriteProblem(w, http.StatusUnsupportedMediaType, "Content-Type "+ct+" is not OTLP (application/x-protobuf or application/json)", "", 0)
		return
	}
	if err != nil {
		wire.WriteProblem(w, http.StatusBadRequest, "decoding OTLP export: "+err.Error(), "", 0)
		return
	}
	spans, ids := fromOTLP(req.GetResourceSpans())
	c.buf.Add(spans, ids)
	if c.fwd != nil {
		c.fwd.send(r.Context(), b, cmp.Or(ct, "application/x-protobuf"))
	}
	resp := &coltracepb.ExportTraceServiceResponse{}
	if isJSON {
		out, _ := protojson.Marshal(resp)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
		return
	}
	out, _ := proto.Marshal(resp)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (c *Collector) lookup(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, ok := c.buf.Get(id)
	if !ok {
		wire.WriteProblem(w, http.StatusNotFound, fmt.Sprintf("no trace with trace id or request id %q among the last %d", id, c.buf.maxTraces), "", 0)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(t)
}

// ErrNotFound is returned by Fetch when the collector holds no such trace.
var ErrNotFound = errors.New("trace not found")

// Fetch asks the collector at base (its URL) for the trace with trace id
// or request id id.
func Fetch(ctx context.Context, base, id string) (Trace, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+LookupPath+url.PathEscape(id), nil)
	if err != nil {
		return Trace{}, errorf("looking up trace %s: %w", id, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Trace{}, errorf("looking up trace %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return Trace{}, fmt.Errorf("%w: no trace or request %s among the recent ones", ErrNotFound, id)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return Trace{}, errorf("looking up trace %s: %s: %s", id, resp.Status, strings.TrimSpace(string(b)))
	}
	var t Trace
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil {
		return Trace{}, errorf("looking up trace %s: %w", id, err)
	}
	return t, nil
}
