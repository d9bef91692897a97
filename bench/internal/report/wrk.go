package report

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Wrk is what one wrk run printed with --latency.
type Wrk struct {
	Requests int64
	Elapsed  time.Duration
	RPS      float64
	// Latency maps a percentile (50, 75, 90, 99) to wrk's value for it.
	Latency map[int]time.Duration
	// Non2xx counts "Non-2xx or 3xx responses"; any makes the sample suspect.
	Non2xx int64
	// SocketErrors sums connect, read, write and timeout errors.
	SocketErrors int64
}

// ErrNotWrk is returned for text that lacks the lines every wrk run prints.
var ErrNotWrk = errors.New("not wrk --latency output")

// ParseWrk reads wrk's human output. wrk has no machine-readable format
// short of a Lua script, and the script hook changes what wrk measures, so
// the text is parsed; the lines it relies on have kept their shape since
// wrk 4.0.
func ParseWrk(r io.Reader) (Wrk, error) {
	w := Wrk{Latency: map[int]time.Duration{}}
	var sawRequests, sawRPS, inDist bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case line == "Latency Distribution":
			inDist = true
		case inDist && len(f) == 2 && strings.HasSuffix(f[0], "%"):
			p, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
			if err != nil || p <= 0 || p > 100 || p != float64(int(p)) {
				return Wrk{}, fmt.Errorf("parsing wrk percentile %q: bad percent", line)
			}
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return Wrk{}, fmt.Errorf("parsing wrk percentile %q: %w", line, err)
			}
			w.Latency[int(p)] = d
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			inDist = false
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || n < 0 {
				return Wrk{}, fmt.Errorf("parsing wrk request count %q: bad number", line)
			}
			d, err := parseWrkDuration(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return Wrk{}, fmt.Errorf("parsing wrk elapsed time %q: %w", line, err)
			}
			w.Requests, w.Elapsed, sawRequests = n, d, true
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "Non-2xx or 3xx responses:")), 10, 64)
			if err != nil || n < 0 {
				return Wrk{}, fmt.Errorf("parsing wrk %q: bad number", line)
			}
			w.Non2xx = n
		case strings.HasPrefix(line, "Socket errors:"):
			// Socket errors: connect 0, read 0, write 0, timeout 0
			rest := strings.Fields(strings.ReplaceAll(strings.TrimPrefix(line, "Socket errors:"), ",", " "))
			if len(rest)%2 != 0 {
				return Wrk{}, fmt.Errorf("parsing wrk %q: odd fields", line)
			}
			for i := 1; i < len(rest); i += 2 {
				n, err := strconv.ParseInt(rest[i], 10, 64)
				if err != nil || n < 0 {
					return Wrk{}, fmt.Errorf("parsing wrk %q: bad number", line)
				}
				w.SocketErrors += n
			}
		case len(f) == 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil || v < 0 || v != v {
				return Wrk{}, fmt.Errorf("parsing wrk %q: bad number", line)
			}
			w.RPS, sawRPS = v, true
		}
	}
	if err := sc.Err(); err != nil {
		return Wrk{}, fmt.Errorf("reading wrk output: %w", err)
	}
	if !sawRequests || !sawRPS {
		return Wrk{}, ErrNotWrk
	}
	for _, p := range []int{50, 99} {
		if _, ok := w.Latency[p]; !ok {
			return Wrk{}, fmt.Errorf("%w: no %d%% latency (was --latency given?)", ErrNotWrk, p)
		}
	}
	return w, nil
}

// parseWrkDuration reads wrk's format_time output: a decimal and one of the
// units us, ms, s, m, h.
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || v < 0 || v != v || v > float64(1<<62)/float64(u.unit) {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		return time.Duration(v * float64(u.unit)), nil
	}
	return 0, fmt.Errorf("bad duration %q: no unit", s)
}
