package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestTransferGolden runs the report over the samples of scenario (x) of a
// real bench/run --quick (testdata/transfer: round 1 as measured, round 2
// scaled from it per server so ratios and medians are not trivial).
func TestTransferGolden(t *testing.T) {
	dir := filepath.Join("testdata", "transfer")
	meta, samples, err := Load(dir)
	if !errors.Is(err, ErrNoSamples) || len(samples) != 0 || meta["transfer_rounds"] != "2" {
		t.Fatalf("Load of a run of (x) alone: %d samples, meta %v, err %v; want ErrNoSamples with the metadata", len(samples), meta, err)
	}
	ts, err := LoadTransfer(dir)
	if err != nil {
		t.Fatalf("LoadTransfer: %v", err)
	}
	if len(ts) != 24 {
		t.Fatalf("loaded %d transfer samples, want 24", len(ts))
	}
	res := Result{Schema: 1, Run: meta}
	res.Transfer = SummarizeTransfer(ts, 100, &res.Goals)
	var table bytes.Buffer
	if err := Render(&table, res); err != nil {
		t.Fatalf("Render: %v", err)
	}
	golden(t, "transfer.table.golden", table.Bytes())
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "transfer.json.golden", append(js, '\n'))

	// Beside the golden: metro's download ratio recomputed from the raw
	// client output, not through SummarizeTransfer.
	rate := func(name string) float64 {
		var out struct{ MBps []float64 }
		b, err := os.ReadFile(filepath.Join(dir, "transfer", name, "transfer.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &out); err != nil || len(out.MBps) != 1 {
			t.Fatalf("%s: %v %v", name, out.MBps, err)
		}
		return out.MBps[0]
	}
	want := (rate("r1-d-download") + rate("r2-d-download")) / (rate("r1-b-download") + rate("r2-b-download"))
	var d *TransferServer
	for i := range res.Transfer.Servers {
		if res.Transfer.Servers[i].ID == "d" {
			d = &res.Transfer.Servers[i]
		}
	}
	if d == nil || d.DownloadXNginx == nil || !within(*d.DownloadXNginx, want, 0.002) {
		t.Errorf("metro's download x nginx = %v, want %.3f from the raw samples", d.DownloadXNginx, want)
	}
}

func within(a, b, tol float64) bool { return a-b <= tol && b-a <= tol }

func TestSummarizeTransfer(t *testing.T) {
	const mib100 = 100 << 20
	s := func(round int, server, op string, mbps ...float64) TransferSample {
		ts := TransferSample{Round: round, Server: server, Op: op, Bytes: mib100, MBps: mbps,
			CPUTicks: map[string]int64{"p": 30}}
		for _, v := range mbps {
			ts.Seconds = append(ts.Seconds, mib100/1e6/v)
		}
		return ts
	}
	ttfb := TransferSample{Round: 1, Server: "d", Op: "ttfb", Bytes: 66560,
		TTFBms: []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, Seconds: make([]float64, 10)}
	samples := []TransferSample{
		s(1, "b", "download", 1000), s(2, "b", "download", 800),
		s(1, "d", "download", 400), s(2, "d", "download", 500),
		s(1, "b", "upload", 500), s(2, "b", "upload", 500),
		s(1, "d", "upload", 150), s(2, "d", "upload", 250),
		ttfb,
		{Round: 2, Server: "d", Op: "ttfb", Errors: 3, Error: "GET /blob/stream: EOF"},
	}
	var goals []Goal
	tr := SummarizeTransfer(samples, 100, &goals)
	if tr == nil || len(tr.Servers) != 2 || tr.Rounds != 2 || tr.Bytes != mib100 {
		t.Fatalf("SummarizeTransfer = %+v", tr)
	}
	b, d := tr.Servers[0], tr.Servers[1]
	if b.ID != "b" || d.ID != "d" {
		t.Fatalf("servers %s, %s; want b, d", b.ID, d.ID)
	}
	checks := []struct {
		name      string
		got       *float64
		want      float64
		wantIsNil bool
	}{
		{"d download MB/s", &d.DownloadMBps, 450, false},
		{"d upload MB/s", &d.UploadMBps, 200, false},
		{"d download x nginx", d.DownloadXNginx, 0.5, false},                // 450/900
		{"d download x nginx paired", d.DownloadXNginxPaired, 0.513, false}, // median(0.4, 0.625), 3 places
		{"d upload x nginx", d.UploadXNginx, 0.4, false},
		{"d upload x nginx paired", d.UploadXNginxPaired, 0.4, false},
		{"b download x nginx", b.DownloadXNginx, 1, false},
		{"d ttfb median", &d.TTFBMs, 5.5, false},
		{"d ttfb p90", &d.TTFBP90Ms, 9, false},
		{"d download x revproxy (no c)", d.DownloadXRevproxy, 0, true},
	}
	for _, c := range checks {
		switch {
		case c.wantIsNil && c.got != nil:
			t.Errorf("%s = %v, want none", c.name, *c.got)
		case !c.wantIsNil && (c.got == nil || !within(*c.got, c.want, 1e-9)):
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// 30 ticks at 100 Hz over one 100 MiB transfer.
	if got := d.CPUMsPer100MiB["download"]["p"]; got != 300 {
		t.Errorf("CPU per 100 MiB = %v ms, want 300", got)
	}
	if d.Errors != 3 || d.FirstError != "GET /blob/stream: EOF" {
		t.Errorf("errors %d %q, want 3 and the first", d.Errors, d.FirstError)
	}
	if len(goals) != 2 || !goals[0].Met || goals[1].Met || goals[0].Value != 0.513 || *goals[0].OfMedians != 0.5 {
		t.Errorf("goals %+v, want download met on 0.513 per round, upload not met", goals)
	}
	if SummarizeTransfer(nil, 100, &goals) != nil {
		t.Error("SummarizeTransfer of nothing is not nil")
	}
}

func TestLoadTransferRejects(t *testing.T) {
	good := `{"op":"download","bytes":10,"seconds":[1],"mbps":[0.00001],"errors":0}`
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"unknown server", map[string]string{"transfer/r1-z-download/transfer.json": good}},
		{"unknown op", map[string]string{"transfer/r1-d-sideways/transfer.json": good}},
		{"round zero", map[string]string{"transfer/r0-d-download/transfer.json": good}},
		{"no round", map[string]string{"transfer/d-download/transfer.json": good}},
		{"missing output", map[string]string{"transfer/r1-d-download/cpu.txt": "gateway 1\n"}},
		{"not JSON", map[string]string{"transfer/r1-d-download/transfer.json": "connection refused"}},
		{"another op", map[string]string{"transfer/r1-d-upload/transfer.json": good}},
		{"bad cpu line", map[string]string{"transfer/r1-d-download/transfer.json": good, "transfer/r1-d-download/cpu.txt": "gateway\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tt.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := LoadTransfer(dir); err == nil {
				t.Error("LoadTransfer succeeded, want an error")
			}
		})
	}
	if ts, err := LoadTransfer(t.TempDir()); err != nil || ts != nil {
		t.Errorf("LoadTransfer of a run without (x) = %v, %v; want none and no error", ts, err)
	}
}
