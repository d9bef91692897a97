package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (rerun with -update if intended)\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

// TestGolden runs the whole report over samples of a real bench/run
// (testdata/run, round 1 as measured, rounds 2 and 3 scaled from it so the
// medians are not trivial).
func TestGolden(t *testing.T) {
	meta, samples, err := Load(filepath.Join("testdata", "run"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(samples) != 30 {
		t.Fatalf("loaded %d samples, want 30", len(samples))
	}
	res, err := Summarize(meta, samples, 100)
	if err != nil {
		t.Fatalf("Summarize: %v", err)
	}
	var table bytes.Buffer
	if err := Render(&table, res); err != nil {
		t.Fatalf("Render: %v", err)
	}
	golden(t, "run.table.golden", table.Bytes())
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "run.json.golden", append(js, '\n'))
}

func TestSummarize(t *testing.T) {
	wrk := func(id string, round int, rps float64, p99ms int, cpu map[string]int64) Sample {
		return Sample{
			Round: round, Scenario: id, RPS: rps, Requests: int64(rps * 10), Elapsed: 10 * time.Second,
			P50: time.Millisecond, P99: time.Duration(p99ms) * time.Millisecond, CPUTicks: cpu,
		}
	}
	tests := []struct {
		name  string
		in    []Sample
		check func(t *testing.T, r Result)
	}{
		{
			name: "median of three, odd count",
			in:   []Sample{wrk("a", 1, 100, 1, nil), wrk("a", 2, 300, 1, nil), wrk("a", 3, 200, 1, nil)},
			check: func(t *testing.T, r Result) {
				if got := r.Scenarios[0].RPS; got != 200 {
					t.Errorf("median rps = %v, want 200", got)
				}
			},
		},
		{
			name: "median of two is their mean",
			in:   []Sample{wrk("a", 1, 100, 1, nil), wrk("a", 2, 300, 1, nil)},
			check: func(t *testing.T, r Result) {
				if got := r.Scenarios[0].RPS; got != 200 {
					t.Errorf("median rps = %v, want 200", got)
				}
			},
		},
		{
			name: "feature variants read against metro (d)",
			in: []Sample{
				wrk("d", 1, 200, 20, nil), wrk("d", 2, 400, 20, nil),
				wrk("j", 1, 100, 30, nil), wrk("j", 2, 300, 30, nil),
				wrk("l", 1, 200, 20, nil), wrk("t", 2, 100, 40, nil),
				wrk("a", 1, 1000, 1, nil),
			},
			check: func(t *testing.T, r Result) {
				j := find(t, r, "j")
				// medians 200 / 300; per round 0.5 and 0.75.
				if j.XMetro == nil || *j.XMetro != 0.667 || j.XMetroPaired == nil || *j.XMetroPaired != 0.625 || *j.P99XMetro != 1.5 {
					t.Errorf("j against d: x %v, paired %v, p99 %v", j.XMetro, j.XMetroPaired, j.P99XMetro)
				}
				if l := find(t, r, "l"); l.XMetroPaired == nil || *l.XMetroPaired != 1 {
					t.Errorf("l paired with d's round 1: %v", l.XMetroPaired)
				}
				if tr := find(t, r, "t"); tr.XMetroPaired == nil || *tr.XMetroPaired != 0.25 || *tr.P99XMetro != 2 {
					t.Errorf("t against d's round 2: paired %v, p99 %v", tr.XMetroPaired, tr.P99XMetro)
				}
				for _, id := range []string{"a", "d"} {
					if sr := find(t, r, id); sr.XMetro != nil || sr.P99XMetro != nil {
						t.Errorf("%s is no variant of d but got x (d) %v", id, sr.XMetro)
					}
				}
			},
		},
		{
			name: "ratios, ceiling and goals met",
			in: []Sample{
				wrk("a", 1, 1000, 1, nil), wrk("b", 1, 400, 10, nil), wrk("c", 1, 100, 10, nil),
				wrk("g", 1, 50, 10, nil), wrk("d", 1, 250, 20, nil), wrk("f", 1, 1000, 1, nil),
			},
			check: func(t *testing.T, r Result) {
				if r.CeilingRPS == nil || *r.CeilingRPS != 500 {
					t.Errorf("ceiling = %v, want 500", r.CeilingRPS)
				}
				d := find(t, r, "d")
				if *d.XNginx != 0.625 || *d.XRevproxy != 2.5 || *d.XRevproxyDefault != 5 || *d.P99XNginx != 2 || *d.OfCeiling != 0.5 {
					t.Errorf("d ratios: x nginx %v, x revproxy %v, x default revproxy %v, p99 %v, of ceiling %v",
						*d.XNginx, *d.XRevproxy, *d.XRevproxyDefault, *d.P99XNginx, *d.OfCeiling)
				}
				if f := find(t, r, "f"); f.XNginx != nil || f.OfCeiling != nil {
					t.Errorf("raw NATS got HTTP ratios: %+v", f)
				}
				if len(r.Goals) != 4 {
					t.Fatalf("goals %+v, want four", r.Goals)
				}
				for _, g := range r.Goals {
					if !g.Met {
						t.Errorf("goal %+v not met", g)
					}
				}
			},
		},
		{
			name: "paired ratios are medians of per-round ratios",
			in: []Sample{
				wrk("b", 1, 100, 1, nil), wrk("b", 2, 400, 1, nil), wrk("b", 3, 200, 1, nil),
				wrk("d", 1, 50, 1, nil), wrk("d", 2, 100, 1, nil), wrk("d", 3, 160, 1, nil),
			},
			check: func(t *testing.T, r Result) {
				// Per round 0.5, 0.25, 0.8: median 0.5. Ratio of medians: 100/200.
				d := find(t, r, "d")
				if d.XNginxPaired == nil || *d.XNginxPaired != 0.5 || *d.XNginx != 0.5 {
					t.Errorf("paired %v, of medians %v; want 0.5 and 0.5", d.XNginxPaired, *d.XNginx)
				}
				if d.XRevproxyPaired != nil {
					t.Errorf("paired ratio to a scenario never measured: %v", *d.XRevproxyPaired)
				}
			},
		},
		{
			name: "throughput goals are judged per round",
			in: []Sample{
				wrk("b", 1, 100, 1, nil), wrk("b", 2, 400, 1, nil), wrk("b", 3, 200, 1, nil),
				wrk("d", 1, 60, 1, nil), wrk("d", 2, 100, 1, nil), wrk("d", 3, 150, 1, nil),
			},
			check: func(t *testing.T, r Result) {
				// Per round 0.6, 0.25, 0.75: median 0.6. Ratio of medians: 100/200.
				if len(r.Goals) == 0 {
					t.Fatal("no goals")
				}
				g := r.Goals[0]
				if g.Value != 0.6 || g.OfMedians == nil || *g.OfMedians != 0.5 || !g.Met {
					t.Errorf("goal %+v (of medians %v); want 0.6 per round, 0.5 of medians, met", g, g.OfMedians)
				}
			},
		},
		{
			name: "goals not met",
			in:   []Sample{wrk("b", 1, 400, 10, nil), wrk("c", 1, 300, 10, nil), wrk("g", 1, 100, 10, nil), wrk("d", 1, 150, 30, nil)},
			check: func(t *testing.T, r Result) {
				for _, g := range r.Goals {
					if g.Met {
						t.Errorf("goal %+v met, want missed", g)
					}
				}
				if r.CeilingRPS != nil {
					t.Errorf("ceiling %v without a and f", *r.CeilingRPS)
				}
			},
		},
		{
			name: "without nginx and revproxy no ratios or goals",
			in:   []Sample{wrk("a", 1, 1000, 1, nil), wrk("d", 1, 250, 20, nil)},
			check: func(t *testing.T, r Result) {
				if d := find(t, r, "d"); d.XNginx != nil || d.XRevproxy != nil || len(r.Goals) != 0 {
					t.Errorf("ratios or goals without their baselines: %+v, %+v", d, r.Goals)
				}
			},
		},
		{
			name: "CPU per request and other load",
			in: []Sample{{
				Round: 1, Scenario: "d", RPS: 1000, Requests: 10000, Elapsed: 10 * time.Second,
				P50: time.Millisecond, P99: 2 * time.Millisecond,
				// 45 ticks of 10 ms over 10000 requests: 45 us each.
				CPUTicks:     map[string]int64{"gateway": 45, "nats-server": 18, "worker": 22},
				MachineTicks: 85 + 15 + 500, ClientTicks: 15,
			}},
			check: func(t *testing.T, r Result) {
				d := find(t, r, "d")
				want := map[string]float64{"gateway": 45, "nats-server": 18, "worker": 22}
				for role, v := range want {
					if d.CPUUsPerReq[role] != v {
						t.Errorf("%s CPU = %v us/req, want %v", role, d.CPUUsPerReq[role], v)
					}
				}
				if got := strings.Join(d.Roles(), ","); got != "gateway,nats-server,worker" {
					t.Errorf("roles in order %s", got)
				}
				// 500 ticks nobody of ours used, over 10 s at 100 ticks/s.
				if r.OtherLoadCPUs == nil || *r.OtherLoadCPUs != 0.5 {
					t.Errorf("other load = %v CPUs, want 0.5", r.OtherLoadCPUs)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Summarize(nil, tt.in, 100)
			if err != nil {
				t.Fatalf("Summarize: %v", err)
			}
			tt.check(t, r)
		})
	}
}

func find(t *testing.T, r Result, id string) ScenarioResult {
	t.Helper()
	for _, sr := range r.Scenarios {
		if sr.ID == id {
			return sr
		}
	}
	t.Fatalf("no scenario %s in %+v", id, r.Scenarios)
	return ScenarioResult{}
}

func TestSummarizeRejects(t *testing.T) {
	if _, err := Summarize(nil, nil, 100); err == nil {
		t.Error("Summarize of no samples succeeded")
	}
	if _, err := Summarize(nil, []Sample{{Round: 1, Scenario: "a", RPS: 1}}, 0); err == nil {
		t.Error("Summarize with 0 clock ticks per second succeeded")
	}
}

func TestLoadRejects(t *testing.T) {
	wrkOut, err := os.ReadFile(filepath.Join("testdata", "wrk-direct.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"no samples", map[string]string{"meta.txt": "rounds=1\n"}},
		{"bad meta line", map[string]string{"meta.txt": "rounds\n", "samples/r1-a/wrk.txt": string(wrkOut)}},
		{"unknown scenario", map[string]string{"samples/r1-z/wrk.txt": string(wrkOut)}},
		{"no round", map[string]string{"samples/a/wrk.txt": string(wrkOut)}},
		{"round zero", map[string]string{"samples/r0-a/wrk.txt": string(wrkOut)}},
		{"missing wrk output", map[string]string{"samples/r1-a/cpu.txt": "backend 3\n"}},
		{"not wrk output", map[string]string{"samples/r1-a/wrk.txt": "connection refused\n"}},
		{"bad nats json", map[string]string{"samples/r1-f/nats.json": "{"}},
		{"bad cpu line", map[string]string{"samples/r1-a/wrk.txt": string(wrkOut), "samples/r1-a/cpu.txt": "backend\n"}},
		{"negative ticks", map[string]string{"samples/r1-a/wrk.txt": string(wrkOut), "samples/r1-a/cpu.txt": "backend -1\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "samples"), 0o755); err != nil {
				t.Fatal(err)
			}
			for name, body := range tt.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, err := Load(dir); err == nil {
				t.Error("Load succeeded, want an error")
			}
		})
	}
}
