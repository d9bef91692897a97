// Package report turns the raw samples that bench/run collects (wrk and
// natsload output, CPU tick deltas read from /proc) into the benchmark's
// result: medians per scenario, ratios to nginx and ReverseProxy, metro's
// fraction of the ceiling, CPU per request, a table for people and JSON for
// bench/results. It hides the sample directory layout and the arithmetic, so
// the shell script only runs processes and copies numbers out of /proc.
package report

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scenario is one of the set-ups the benchmark measures.
type Scenario struct {
	ID    string // as in bench/README.md (a..f as in issue 10)
	Name  string // short key used in JSON
	Label string // what stands in front of the hello handler
}

// Scenarios lists every scenario in the order bench/run measures them.
var Scenarios = []Scenario{
	{"a", "direct", "hello handler, direct HTTP"},
	{"b", "nginx", "nginx -> backend"},
	{"c", "revproxy", "httputil.ReverseProxy -> backend"},
	{"g", "revproxy_default", "ReverseProxy, default Transport -> backend"},
	{"d", "metro", "metro gateway -> nats-server -> worker"},
	{"j", "metro_jwt", "(d) verifying a JWT per request"},
	{"l", "metro_locked", "(d) on a locked bus (nkeys, permissions)"},
	{"t", "metro_traced", "(d) tracing every request (OTLP)"},
	{"e", "metro_embedded", "metro gateway with embedded NATS -> worker"},
	{"f", "nats", "raw NATS request/reply, no HTTP"},
}

// Sample is one measurement of one scenario in one round.
type Sample struct {
	Round    int
	Scenario string // Scenario.ID
	Requests int64
	Elapsed  time.Duration
	RPS      float64
	P50, P99 time.Duration
	// Errors counts non-2xx replies, socket errors and failed NATS requests.
	Errors int64
	// CPUTicks maps a process role (gateway, nats-server, worker, ...) to
	// the utime+stime clock ticks it used during the sample.
	CPUTicks map[string]int64
	// MachineTicks is the whole machine's busy ticks during the sample and
	// ClientTicks those of the load generator; with CPUTicks they tell how
	// much else ran on the machine meanwhile. Zero when not recorded.
	MachineTicks, ClientTicks int64
}

// Sample directory layout, written by bench/run:
//
//	DIR/meta.txt                   key=value lines describing the run
//	DIR/samples/r<N>-<id>/wrk.txt  wrk --latency output (HTTP scenarios)
//	DIR/samples/r<N>-<id>/nats.json natsload output (scenario f)
//	DIR/samples/r<N>-<id>/cpu.txt  "<role> <ticks>" lines; the roles
//	                               _machine and _client are the machine's
//	                               busy ticks and the load generator's
const (
	metaFile = "meta.txt"
	wrkFile  = "wrk.txt"
	natsFile = "nats.json"
	cpuFile  = "cpu.txt"
)

// ErrNoSamples is Load's error for a run that measured none of the
// request-rate scenarios (it may still hold scenario (x)'s, which
// LoadTransfer reads); Load still returns the run's metadata with it.
var ErrNoSamples = errors.New("no samples")

// Load reads every sample under dir and the run's metadata.
func Load(dir string) (map[string]string, []Sample, error) {
	meta, err := loadMeta(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, nil, err
	}
	entries, err := os.ReadDir(filepath.Join(dir, "samples"))
	if errors.Is(err, fs.ErrNotExist) {
		return meta, nil, fmt.Errorf("%w under %s", ErrNoSamples, dir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("listing samples: %w", err)
	}
	var samples []Sample
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		s, err := loadSample(filepath.Join(dir, "samples", e.Name()), e.Name())
		if err != nil {
			return nil, nil, err
		}
		samples = append(samples, s)
	}
	if len(samples) == 0 {
		return meta, nil, fmt.Errorf("%w under %s", ErrNoSamples, dir)
	}
	slices.SortFunc(samples, func(a, b Sample) int {
		if a.Round != b.Round {
			return a.Round - b.Round
		}
		return strings.Compare(a.Scenario, b.Scenario)
	})
	return meta, samples, nil
}

func loadMeta(path string) (map[string]string, error) {
	meta := map[string]string{}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return meta, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading run metadata: %w", err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s:%d: want key=value", path, i+1)
		}
		meta[k] = strings.TrimSpace(v)
	}
	return meta, nil
}

// loadSample reads one sample directory named r<round>-<scenario id>.
func loadSample(dir, name string) (Sample, error) {
	var s Sample
	r, id, ok := strings.Cut(name, "-")
	round, err := strconv.Atoi(strings.TrimPrefix(r, "r"))
	if !ok || !strings.HasPrefix(r, "r") || err != nil || round < 1 || scenario(id) == nil {
		return s, fmt.Errorf("sample directory %q: want r<round>-<scenario id>", name)
	}
	s.Round, s.Scenario = round, id
	if id == "f" {
		err = loadNats(filepath.Join(dir, natsFile), &s)
	} else {
		err = loadWrk(filepath.Join(dir, wrkFile), &s)
	}
	if err != nil {
		return s, fmt.Errorf("sample %s: %w", name, err)
	}
	if err := loadCPU(filepath.Join(dir, cpuFile), &s); err != nil {
		return s, fmt.Errorf("sample %s: %w", name, err)
	}
	return s, nil
}

func loadWrk(path string, s *Sample) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening wrk output: %w", err)
	}
	defer f.Close()
	w, err := ParseWrk(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	s.Requests, s.Elapsed, s.RPS = w.Requests, w.Elapsed, w.RPS
	s.P50, s.P99 = w.Latency[50], w.Latency[99]
	s.Errors = w.Non2xx + w.SocketErrors
	return nil
}

func loadNats(path string, s *Sample) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading natsload output: %w", err)
	}
	var n struct {
		Requests int64   `json:"requests"`
		Errors   int64   `json:"errors"`
		Seconds  float64 `json:"seconds"`
		RPS      float64 `json:"rps"`
		P50Ms    float64 `json:"p50_ms"`
		P99Ms    float64 `json:"p99_ms"`
	}
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("decoding natsload output %s: %w", path, err)
	}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	s.Requests, s.Errors, s.RPS = n.Requests, n.Errors, n.RPS
	s.Elapsed = time.Duration(n.Seconds * float64(time.Second))
	s.P50, s.P99 = ms(n.P50Ms), ms(n.P99Ms)
	return nil
}

func loadCPU(path string, s *Sample) error {
	s.CPUTicks = map[string]int64{}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening CPU ticks: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		var ticks int64
		if len(fields) == 2 {
			ticks, err = strconv.ParseInt(fields[1], 10, 64)
		}
		if len(fields) != 2 || err != nil || ticks < 0 {
			return fmt.Errorf("%s:%d: want \"<role> <ticks>\"", path, n)
		}
		switch fields[0] {
		case "_machine":
			s.MachineTicks = ticks
		case "_client":
			s.ClientTicks = ticks
		default:
			s.CPUTicks[fields[0]] += ticks
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}

func scenario(id string) *Scenario {
	for i := range Scenarios {
		if Scenarios[i].ID == id {
			return &Scenarios[i]
		}
	}
	return nil
}

// median of vs; vs is reordered.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}
