package report

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"
)

// Result is the benchmark's outcome, as written to bench/results/*.json.
type Result struct {
	Schema int               `json:"schema"`
	Run    map[string]string `json:"run"`
	// Scenarios holds the scenarios measured, in Scenarios order.
	Scenarios []ScenarioResult `json:"scenarios"`
	// CeilingRPS is 1/(1/a + 1/f): the rate this machine could reach if an
	// HTTP hop and a NATS round trip were all a request cost.
	CeilingRPS *float64 `json:"ceiling_rps,omitempty"`
	Goals      []Goal   `json:"goals,omitempty"`
	// OtherLoadCPUs is the median number of CPUs that processes outside
	// the benchmark kept busy during the samples: a number well above zero
	// means the figures are depressed by a shared machine.
	OtherLoadCPUs *float64 `json:"other_load_cpus,omitempty"`
	// Transfer is the large-transfer scenario (x), when it ran.
	Transfer *Transfer       `json:"transfer,omitempty"`
	Reload   json.RawMessage `json:"reload,omitempty"`
}

// ScenarioResult holds the medians over a scenario's samples.
type ScenarioResult struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Label     string   `json:"label"`
	RPS       float64  `json:"rps"`
	P50Ms     float64  `json:"p50_ms"`
	P99Ms     float64  `json:"p99_ms"`
	XNginx    *float64 `json:"x_nginx,omitempty"`
	XRevproxy *float64 `json:"x_revproxy,omitempty"`
	// XRevproxyDefault is the ratio to (g), ReverseProxy on Go's default
	// Transport, which keeps 2 idle connections per host.
	XRevproxyDefault *float64 `json:"x_revproxy_default,omitempty"`
	// XNginxPaired and XRevproxyPaired are the medians of the per-round
	// ratios (this scenario's req/s over nginx's in the same round). On a
	// machine shared with other work they move less than the ratio of
	// medians, since a neighbour's burst spans adjacent samples.
	XNginxPaired           *float64 `json:"x_nginx_paired,omitempty"`
	XRevproxyPaired        *float64 `json:"x_revproxy_paired,omitempty"`
	XRevproxyDefaultPaired *float64 `json:"x_revproxy_default_paired,omitempty"`
	P99XNginx              *float64 `json:"p99_x_nginx,omitempty"`
	// XMetro is the ratio to metro (d) of the scenarios that are (d) with
	// one feature turned on (j, l, t): what that feature costs. XMetroPaired
	// is the median of the per-round ratios, P99XMetro the ratio of p99s.
	XMetro       *float64 `json:"x_metro,omitempty"`
	XMetroPaired *float64 `json:"x_metro_paired,omitempty"`
	P99XMetro    *float64 `json:"p99_x_metro,omitempty"`
	OfCeiling    *float64 `json:"of_ceiling,omitempty"`
	// CPUUsPerReq maps each process role to the median CPU microseconds it
	// spent per request.
	CPUUsPerReq map[string]float64 `json:"cpu_us_per_req,omitempty"`
	Errors      int64              `json:"errors"`
	Samples     []SampleResult     `json:"samples"`
}

// SampleResult is one sample as measured.
type SampleResult struct {
	Round         int                `json:"round"`
	Requests      int64              `json:"requests"`
	Seconds       float64            `json:"seconds"`
	RPS           float64            `json:"rps"`
	P50Ms         float64            `json:"p50_ms"`
	P99Ms         float64            `json:"p99_ms"`
	Errors        int64              `json:"errors"`
	CPUUsPerReq   map[string]float64 `json:"cpu_us_per_req,omitempty"`
	OtherLoadCPUs *float64           `json:"other_load_cpus,omitempty"`
}

// Goal is one of issue 10's targets for metro (d). A throughput ratio is
// judged on the median of the per-round ratios when rounds pair up (the
// steadier figure on a shared machine), with the ratio of medians kept
// beside it; p99 on the ratio of medians.
type Goal struct {
	What      string   `json:"what"`
	Value     float64  `json:"value"`
	OfMedians *float64 `json:"of_medians,omitempty"` // set when Value is paired
	Target    float64  `json:"target"`
	AtMost    bool     `json:"at_most,omitempty"`
	Met       bool     `json:"met"`
}

// Summarize computes the medians, ratios and goals of samples. clkTck is
// the kernel's USER_HZ (getconf CLK_TCK), the unit of the CPU ticks.
func Summarize(meta map[string]string, samples []Sample, clkTck int) (Result, error) {
	if clkTck <= 0 {
		return Result{}, fmt.Errorf("clock ticks per second must be positive, got %d", clkTck)
	}
	res := Result{Schema: 1, Run: meta}
	if res.Run == nil {
		res.Run = map[string]string{}
	}
	tickUs := 1e6 / float64(clkTck)
	var other []float64
	byID := map[string]*ScenarioResult{}
	for _, sc := range Scenarios {
		var (
			rps, p50, p99 []float64
			cpu           = map[string][]float64{}
			sr            = ScenarioResult{ID: sc.ID, Name: sc.Name, Label: sc.Label}
		)
		for _, s := range samples {
			if s.Scenario != sc.ID {
				continue
			}
			one := SampleResult{
				Round:    s.Round,
				Requests: s.Requests,
				Seconds:  round(s.Elapsed.Seconds(), 3),
				RPS:      round(s.RPS, 1),
				P50Ms:    ms(s.P50),
				P99Ms:    ms(s.P99),
				Errors:   s.Errors,
			}
			if s.Requests > 0 && len(s.CPUTicks) > 0 {
				one.CPUUsPerReq = map[string]float64{}
				for role, t := range s.CPUTicks {
					v := float64(t) * tickUs / float64(s.Requests)
					one.CPUUsPerReq[role] = round(v, 2)
					cpu[role] = append(cpu[role], v)
				}
			}
			if s.MachineTicks > 0 && s.Elapsed > 0 {
				used := s.ClientTicks
				for _, t := range s.CPUTicks {
					used += t
				}
				o := max(0, float64(s.MachineTicks-used)/float64(clkTck)/s.Elapsed.Seconds())
				one.OtherLoadCPUs = ptr(round(o, 2))
				other = append(other, o)
			}
			rps = append(rps, s.RPS)
			p50 = append(p50, float64(s.P50))
			p99 = append(p99, float64(s.P99))
			sr.Errors += s.Errors
			sr.Samples = append(sr.Samples, one)
		}
		if len(sr.Samples) == 0 {
			continue
		}
		sr.RPS = round(median(rps), 1)
		sr.P50Ms = ms(time.Duration(median(p50)))
		sr.P99Ms = ms(time.Duration(median(p99)))
		if len(cpu) > 0 {
			sr.CPUUsPerReq = map[string]float64{}
			for role, vs := range cpu {
				sr.CPUUsPerReq[role] = round(median(vs), 2)
			}
		}
		res.Scenarios = append(res.Scenarios, sr)
	}
	// Pointers are taken once the slice stops growing.
	for i := range res.Scenarios {
		byID[res.Scenarios[i].ID] = &res.Scenarios[i]
	}
	if len(res.Scenarios) == 0 {
		return Result{}, fmt.Errorf("no sample belongs to a known scenario")
	}
	if len(other) > 0 {
		res.OtherLoadCPUs = ptr(round(median(other), 2))
	}
	a, f := byID["a"], byID["f"]
	if a != nil && f != nil && a.RPS > 0 && f.RPS > 0 {
		res.CeilingRPS = ptr(round(1/(1/a.RPS+1/f.RPS), 1))
	}
	nginx, rp, rpDefault := byID["b"], byID["c"], byID["g"]
	for i := range res.Scenarios {
		sr := &res.Scenarios[i]
		if sr.ID == "f" {
			// Raw NATS is an ingredient of the ceiling, not an HTTP
			// server: ratios to HTTP servers would mean nothing.
			continue
		}
		if nginx != nil && nginx.RPS > 0 {
			sr.XNginx = ptr(round(sr.RPS/nginx.RPS, 3))
			if nginx.P99Ms > 0 {
				sr.P99XNginx = ptr(round(sr.P99Ms/nginx.P99Ms, 3))
			}
		}
		if rp != nil && rp.RPS > 0 {
			sr.XRevproxy = ptr(round(sr.RPS/rp.RPS, 3))
		}
		if rpDefault != nil && rpDefault.RPS > 0 {
			sr.XRevproxyDefault = ptr(round(sr.RPS/rpDefault.RPS, 3))
		}
		sr.XNginxPaired = paired(samples, sr.ID, "b")
		sr.XRevproxyPaired = paired(samples, sr.ID, "c")
		sr.XRevproxyDefaultPaired = paired(samples, sr.ID, "g")
		if d := byID["d"]; d != nil && d.RPS > 0 && Variant(sr.ID) {
			sr.XMetro = ptr(round(sr.RPS/d.RPS, 3))
			sr.XMetroPaired = paired(samples, sr.ID, "d")
			if d.P99Ms > 0 {
				sr.P99XMetro = ptr(round(sr.P99Ms/d.P99Ms, 3))
			}
		}
		if res.CeilingRPS != nil && (sr.ID == "d" || sr.ID == "e") {
			sr.OfCeiling = ptr(round(sr.RPS / *res.CeilingRPS, 3))
		}
	}
	if d := byID["d"]; d != nil {
		throughput := func(what string, ofMedians, perRound *float64, target float64) {
			if ofMedians == nil {
				return
			}
			g := Goal{What: what, Value: *ofMedians, Target: target}
			if perRound != nil {
				g.Value, g.OfMedians = *perRound, ofMedians
			}
			g.Met = g.Value >= target
			res.Goals = append(res.Goals, g)
		}
		throughput("metro (d) req/s vs nginx", d.XNginx, d.XNginxPaired, 0.5)
		throughput("metro (d) req/s vs ReverseProxy", d.XRevproxy, d.XRevproxyPaired, 2)
		throughput("metro (d) req/s vs ReverseProxy, default Transport", d.XRevproxyDefault, d.XRevproxyDefaultPaired, 2)
		if d.P99XNginx != nil {
			res.Goals = append(res.Goals, Goal{What: "metro (d) p99 vs nginx", Value: *d.P99XNginx, Target: 2, AtMost: true, Met: *d.P99XNginx <= 2})
		}
	}
	return res, nil
}

// Variant reports whether scenario id is metro (d) with one feature of the
// request path turned on, whose figures are read against (d)'s.
func Variant(id string) bool { return id == "j" || id == "l" || id == "t" }

// paired returns the median over rounds of id's req/s divided by base's in
// the same round, or nil when no round has both.
func paired(samples []Sample, id, base string) *float64 {
	rps := map[int]float64{}
	for _, s := range samples {
		if s.Scenario == base && s.RPS > 0 {
			rps[s.Round] = s.RPS
		}
	}
	var ratios []float64
	for _, s := range samples {
		if b, ok := rps[s.Round]; ok && s.Scenario == id {
			ratios = append(ratios, s.RPS/b)
		}
	}
	if len(ratios) == 0 {
		return nil
	}
	return ptr(round(median(ratios), 3))
}

// Roles returns the CPU roles of sr in a stable, readable order: the metro
// processes first, in request order, then the rest by name.
func (sr ScenarioResult) Roles() []string {
	order := []string{"gateway", "nats-server", "worker"}
	var roles []string
	for _, r := range order {
		if _, ok := sr.CPUUsPerReq[r]; ok {
			roles = append(roles, r)
		}
	}
	var rest []string
	for r := range sr.CPUUsPerReq {
		if !slices.Contains(order, r) {
			rest = append(rest, r)
		}
	}
	slices.Sort(rest)
	return append(roles, rest...)
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

func ptr[T any](v T) *T { return &v }
