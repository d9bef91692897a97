package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The large-transfer scenario (x) measures, through the servers of (a),
// (b), (c) and (d), a download and an upload of a blob (bench/blob) and
// the time to the first byte of a streamed reply. bench/run writes one
// directory per round, server and operation:
//
//	DIR/transfer/r<N>-<id>-<op>/transfer.json  what bench/cmd/transfer printed
//	DIR/transfer/r<N>-<id>-<op>/cpu.txt        as for the other samples
//
// with <op> one of download, upload, ttfb.
const (
	transferDir  = "transfer"
	transferFile = "transfer.json"
)

// TransferOps are the operations of scenario (x), in the order bench/run
// runs them.
var TransferOps = []string{"download", "upload", "ttfb"}

// TransferServers are the scenarios whose servers (x) goes through.
var TransferServers = []string{"a", "b", "c", "d"}

// transferLabels say what stands in front of the blob handler.
var transferLabels = map[string]string{
	"a": "blob handler, direct HTTP",
	"b": "nginx -> backend",
	"c": "httputil.ReverseProxy -> backend",
	"d": "metro gateway -> nats-server -> worker",
}

// TransferSample is one run of bench/cmd/transfer.
type TransferSample struct {
	Round  int
	Server string // a scenario ID of TransferServers
	Op     string
	Bytes  int64
	// Seconds, MBps and TTFBms are per successful request, as printed.
	Seconds, MBps, TTFBms []float64
	Errors                int
	Error                 string
	CPUTicks              map[string]int64
	MachineTicks          int64
	ClientTicks           int64
}

// LoadTransfer reads the samples of scenario (x) under dir: none when it
// did not run.
func LoadTransfer(dir string) ([]TransferSample, error) {
	entries, err := os.ReadDir(filepath.Join(dir, transferDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing transfer samples: %w", err)
	}
	var out []TransferSample
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		s, err := loadTransferSample(filepath.Join(dir, transferDir, e.Name()), e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b TransferSample) int {
		if a.Round != b.Round {
			return a.Round - b.Round
		}
		if c := strings.Compare(a.Server, b.Server); c != 0 {
			return c
		}
		return strings.Compare(a.Op, b.Op)
	})
	return out, nil
}

// loadTransferSample reads one directory named r<round>-<server>-<op>.
func loadTransferSample(dir, name string) (TransferSample, error) {
	var s TransferSample
	parts := strings.Split(name, "-")
	var round int
	var err error
	if len(parts) == 3 && strings.HasPrefix(parts[0], "r") {
		round, err = strconv.Atoi(parts[0][1:])
	}
	if len(parts) != 3 || !strings.HasPrefix(parts[0], "r") || err != nil || round < 1 ||
		!slices.Contains(TransferServers, parts[1]) || !slices.Contains(TransferOps, parts[2]) {
		return s, fmt.Errorf("transfer sample directory %q: want r<round>-<%s>-<%s>", name,
			strings.Join(TransferServers, "|"), strings.Join(TransferOps, "|"))
	}
	s.Round, s.Server, s.Op = round, parts[1], parts[2]
	b, err := os.ReadFile(filepath.Join(dir, transferFile))
	if err != nil {
		return s, fmt.Errorf("transfer sample %s: reading the client's output: %w", name, err)
	}
	var t struct {
		Op      string    `json:"op"`
		Bytes   int64     `json:"bytes"`
		Seconds []float64 `json:"seconds"`
		MBps    []float64 `json:"mbps"`
		TTFBms  []float64 `json:"ttfb_ms"`
		Errors  int       `json:"errors"`
		Error   string    `json:"error"`
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return s, fmt.Errorf("transfer sample %s: decoding the client's output: %w", name, err)
	}
	if t.Op != s.Op {
		return s, fmt.Errorf("transfer sample %s: the client measured %q", name, t.Op)
	}
	s.Bytes, s.Seconds, s.MBps, s.TTFBms, s.Errors, s.Error = t.Bytes, t.Seconds, t.MBps, t.TTFBms, t.Errors, t.Error
	// The CPU lines have the format of the other samples.
	var cpu Sample
	if err := loadCPU(filepath.Join(dir, cpuFile), &cpu); err != nil {
		return s, fmt.Errorf("transfer sample %s: %w", name, err)
	}
	s.CPUTicks, s.MachineTicks, s.ClientTicks = cpu.CPUTicks, cpu.MachineTicks, cpu.ClientTicks
	return s, nil
}

// Transfer is the outcome of scenario (x).
type Transfer struct {
	// Bytes is the length of each download and upload.
	Bytes   int64            `json:"bytes"`
	Rounds  int              `json:"rounds"`
	Servers []TransferServer `json:"servers"`
}

// TransferServer holds the medians of one server in scenario (x).
type TransferServer struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Label string `json:"label"`
	// DownloadMBps and UploadMBps are medians over the rounds, in 10^6
	// bytes a second.
	DownloadMBps float64 `json:"download_mbps"`
	UploadMBps   float64 `json:"upload_mbps"`
	// TTFBMs is the median over every streamed reply of every round of the
	// time from the request written to the first body byte; TTFBP90Ms its
	// 90th percentile.
	TTFBMs    float64 `json:"ttfb_ms"`
	TTFBP90Ms float64 `json:"ttfb_p90_ms"`
	// Ratios to nginx (b) and ReverseProxy (c): of the medians, and the
	// median of the per-round ratios (Paired).
	DownloadXNginx          *float64 `json:"download_x_nginx,omitempty"`
	UploadXNginx            *float64 `json:"upload_x_nginx,omitempty"`
	DownloadXNginxPaired    *float64 `json:"download_x_nginx_paired,omitempty"`
	UploadXNginxPaired      *float64 `json:"upload_x_nginx_paired,omitempty"`
	DownloadXRevproxy       *float64 `json:"download_x_revproxy,omitempty"`
	UploadXRevproxy         *float64 `json:"upload_x_revproxy,omitempty"`
	DownloadXRevproxyPaired *float64 `json:"download_x_revproxy_paired,omitempty"`
	UploadXRevproxyPaired   *float64 `json:"upload_x_revproxy_paired,omitempty"`
	// CPUMsPer100MiB maps download and upload to each process role's
	// median CPU milliseconds per 100 MiB moved.
	CPUMsPer100MiB map[string]map[string]float64 `json:"cpu_ms_per_100mib,omitempty"`
	Errors         int                           `json:"errors"`
	// FirstError is the first failure a client reported, to start from.
	FirstError string           `json:"first_error,omitempty"`
	Samples    []TransferRecord `json:"samples"`
}

// TransferRecord is one sample as measured.
type TransferRecord struct {
	Round  int       `json:"round"`
	Op     string    `json:"op"`
	MBps   []float64 `json:"mbps,omitempty"`
	TTFBMs []float64 `json:"ttfb_ms,omitempty"`
	Errors int       `json:"errors"`
	// CPUMs is each role's CPU milliseconds over the sample.
	CPUMs map[string]float64 `json:"cpu_ms,omitempty"`
}

// SummarizeTransfer computes scenario (x)'s medians and ratios and adds
// its goals to goals; it returns nil when there are no samples.
func SummarizeTransfer(samples []TransferSample, clkTck int, goals *[]Goal) *Transfer {
	if len(samples) == 0 {
		return nil
	}
	tickMs := 1e3 / float64(clkTck)
	t := &Transfer{}
	rounds := map[int]bool{}
	// perRound[server][op][round] is the round's figure (MB/s), for the
	// paired ratios.
	perRound := map[string]map[string]map[int]float64{}
	for _, id := range TransferServers {
		sc := scenario(id)
		ts := TransferServer{ID: id, Name: sc.Name, Label: transferLabels[id]}
		var down, up, ttfb []float64
		cpu := map[string]map[string][]float64{}
		perRound[id] = map[string]map[int]float64{}
		for _, s := range samples {
			if s.Server != id {
				continue
			}
			rounds[s.Round] = true
			if s.Op == "download" || s.Op == "upload" {
				t.Bytes = max(t.Bytes, s.Bytes)
			}
			rec := TransferRecord{Round: s.Round, Op: s.Op, Errors: s.Errors}
			ts.Errors += s.Errors
			if ts.FirstError == "" {
				ts.FirstError = s.Error
			}
			for _, v := range s.MBps {
				rec.MBps = append(rec.MBps, round(v, 1))
			}
			for _, v := range s.TTFBms {
				rec.TTFBMs = append(rec.TTFBMs, round(v, 3))
			}
			if len(s.CPUTicks) > 0 {
				rec.CPUMs = map[string]float64{}
				for role, ticks := range s.CPUTicks {
					rec.CPUMs[role] = round(float64(ticks)*tickMs, 1)
				}
			}
			var moved float64
			for _, secs := range s.Seconds {
				if secs > 0 {
					moved += float64(s.Bytes)
				}
			}
			if (s.Op == "download" || s.Op == "upload") && moved > 0 && len(s.CPUTicks) > 0 {
				if cpu[s.Op] == nil {
					cpu[s.Op] = map[string][]float64{}
				}
				for role, ticks := range s.CPUTicks {
					cpu[s.Op][role] = append(cpu[s.Op][role], float64(ticks)*tickMs*float64(100<<20)/moved)
				}
			}
			switch s.Op {
			case "download":
				down = append(down, s.MBps...)
			case "upload":
				up = append(up, s.MBps...)
			case "ttfb":
				ttfb = append(ttfb, s.TTFBms...)
			}
			if len(s.MBps) > 0 {
				if perRound[id][s.Op] == nil {
					perRound[id][s.Op] = map[int]float64{}
				}
				perRound[id][s.Op][s.Round] = median(slices.Clone(s.MBps))
			}
			ts.Samples = append(ts.Samples, rec)
		}
		if len(ts.Samples) == 0 {
			continue
		}
		ts.DownloadMBps = round(orZero(median(down)), 1)
		ts.UploadMBps = round(orZero(median(up)), 1)
		ts.TTFBMs = round(orZero(median(ttfb)), 3)
		ts.TTFBP90Ms = round(orZero(percentile(ttfb, 90)), 3)
		if len(cpu) > 0 {
			ts.CPUMsPer100MiB = map[string]map[string]float64{}
			for op, roles := range cpu {
				ts.CPUMsPer100MiB[op] = map[string]float64{}
				for role, vs := range roles {
					ts.CPUMsPer100MiB[op][role] = round(median(vs), 1)
				}
			}
		}
		t.Servers = append(t.Servers, ts)
	}
	t.Rounds = len(rounds)
	byID := map[string]*TransferServer{}
	for i := range t.Servers {
		byID[t.Servers[i].ID] = &t.Servers[i]
	}
	ratio := func(v, base float64) *float64 {
		if v <= 0 || base <= 0 {
			return nil
		}
		return ptr(round(v/base, 3))
	}
	pairedOp := func(id, base, op string) *float64 {
		var rs []float64
		for r, v := range perRound[id][op] {
			if b, ok := perRound[base][op][r]; ok && b > 0 {
				rs = append(rs, v/b)
			}
		}
		if len(rs) == 0 {
			return nil
		}
		return ptr(round(median(rs), 3))
	}
	for i := range t.Servers {
		ts := &t.Servers[i]
		if n := byID["b"]; n != nil {
			ts.DownloadXNginx = ratio(ts.DownloadMBps, n.DownloadMBps)
			ts.UploadXNginx = ratio(ts.UploadMBps, n.UploadMBps)
			ts.DownloadXNginxPaired = pairedOp(ts.ID, "b", "download")
			ts.UploadXNginxPaired = pairedOp(ts.ID, "b", "upload")
		}
		if c := byID["c"]; c != nil {
			ts.DownloadXRevproxy = ratio(ts.DownloadMBps, c.DownloadMBps)
			ts.UploadXRevproxy = ratio(ts.UploadMBps, c.UploadMBps)
			ts.DownloadXRevproxyPaired = pairedOp(ts.ID, "c", "download")
			ts.UploadXRevproxyPaired = pairedOp(ts.ID, "c", "upload")
		}
	}
	if d := byID["d"]; d != nil && goals != nil {
		add := func(what string, ofMedians, perRound *float64) {
			if ofMedians == nil {
				return
			}
			g := Goal{What: what, Value: *ofMedians, Target: 0.5}
			if perRound != nil {
				g.Value, g.OfMedians = *perRound, ofMedians
			}
			g.Met = g.Value >= g.Target
			*goals = append(*goals, g)
		}
		add("metro (x) download MB/s vs nginx", d.DownloadXNginx, d.DownloadXNginxPaired)
		add("metro (x) upload MB/s vs nginx", d.UploadXNginx, d.UploadXNginxPaired)
	}
	return t
}

// percentile of vs by nearest rank; vs is reordered.
func percentile(vs []float64, p float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	i := int(float64(len(vs))*p/100+0.5) - 1
	return vs[min(max(i, 0), len(vs)-1)]
}

// orZero turns the NaN of an empty median into 0, which JSON can hold.
func orZero(v float64) float64 {
	if v != v {
		return 0
	}
	return v
}
