package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const runDir = "../../internal/report/testdata/run"

func TestReportWritesTableAndJSON(t *testing.T) {
	dir := t.TempDir()
	reload := filepath.Join(dir, "reload.json")
	if err := os.WriteFile(reload, []byte(`{"reload_median_ms": 412.5, "samples_ms": [400, 412.5, 430]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "results", "latest.json")
	var stdout bytes.Buffer
	if err := run([]string{"-dir", runDir, "-json", out, "-reload", reload}, &stdout); err != nil {
		t.Fatalf("report: %v", err)
	}
	if !strings.Contains(stdout.String(), "ceiling 1/(1/a + 1/f)") {
		t.Errorf("table lacks the ceiling:\n%s", stdout.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Scenarios []struct{ ID string } `json:"scenarios"`
		Reload    struct {
			Median float64 `json:"reload_median_ms"`
		} `json:"reload"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("results are not JSON: %v", err)
	}
	if len(got.Scenarios) != 10 || got.Reload.Median != 412.5 {
		t.Errorf("results: %d scenarios, reload median %v; want 10 and 412.5", len(got.Scenarios), got.Reload.Median)
	}
}

func TestReportRejects(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "reload.json")
	if err := os.WriteFile(bad, []byte("reload failed"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{},
		{"-dir", t.TempDir()},
		{"-dir", runDir, "-reload", bad},
		{"-dir", runDir, "-reload", filepath.Join(t.TempDir(), "missing.json")},
		{"-dir", runDir, "-clk-tck", "0"},
	} {
		if err := run(args, &bytes.Buffer{}); err == nil {
			t.Errorf("report %q succeeded", args)
		}
	}
}

// TestReportOfTransferAlone: a run of scenario (x) alone (BENCH_SCENARIOS=x)
// has no request-rate samples and is still reported.
func TestReportOfTransferAlone(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.json")
	var stdout bytes.Buffer
	if err := run([]string{"-dir", "../../internal/report/testdata/transfer", "-json", out}, &stdout); err != nil {
		t.Fatalf("report: %v", err)
	}
	if !strings.Contains(stdout.String(), "large transfer (x)") || !strings.Contains(stdout.String(), "goal: metro (x) download MB/s vs nginx") {
		t.Errorf("table lacks (x) or its goals:\n%s", stdout.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Scenarios []json.RawMessage `json:"scenarios"`
		Transfer  struct {
			Servers []struct{ ID string } `json:"servers"`
		} `json:"transfer"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Scenarios) != 0 || len(got.Transfer.Servers) != 4 {
		t.Errorf("results: %d scenarios and %d servers of (x), want 0 and 4", len(got.Scenarios), len(got.Transfer.Servers))
	}
}
