package tracing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/metropolis-dev/metro/internal/devstate"
)

// ShowOptions are the inputs of `metro trace`.
type ShowOptions struct {
	// ID is a trace id or a request id.
	ID string
	// Dir is where the search for the running metro dev starts.
	Dir string
	// URL is the collector to ask; "" finds it through .metro/dev.json.
	URL string
	// Wait is how long a trace not seen yet is waited for: spans reach
	// the collector in batches, a moment after the request.
	Wait time.Duration
	JSON bool
	Out  io.Writer
}

// Show prints the trace ID names, as a tree or (JSON) as a Trace.
func Show(ctx context.Context, o ShowOptions) error {
	base := o.URL
	if base == "" {
		st, err := devstate.Find(o.Dir)
		if err != nil {
			return err
		}
		if st.TraceURL == "" {
			return errors.New("the running metro dev keeps no traces (it predates metro trace); restart it")
		}
		base = st.TraceURL
	}
	deadline := time.Now().Add(o.Wait)
	var t Trace
	for {
		var err error
		t, err = Fetch(ctx, base, o.ID)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrNotFound) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if o.JSON {
		b, err := json.MarshalIndent(t, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding trace: %w", err)
		}
		_, err = fmt.Fprintf(o.Out, "%s\n", b)
		return err
	}
	return Render(o.Out, t)
}
