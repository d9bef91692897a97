package metrotest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metropolis-dev/metro/internal/recording"
	"github.com/metropolis-dev/metro/metrotest"
)

// writeRecording records a catalog answering GET /products/apple with
// price, and an order desk that called it.
func writeRecording(t *testing.T, price int) string {
	t.Helper()
	var buf bytes.Buffer
	w := recording.NewWriter(&buf, nil)
	js := http.Header{"Content-Type": {"application/json"}}
	w.Write(recording.Exchange{Subject: "products.apple.GET", Method: "GET", Path: "/products/apple", Worker: "catalog", Outcome: "ok", Status: 200,
		Reply: &recording.Message{Header: js, Body: fmt.Appendf(nil, `{"id":"apple","price":%d}`, price)}})
	w.Write(recording.Exchange{Subject: "quote.apple.GET", Method: "GET", Path: "/quote/apple", Query: "n=3", Worker: "desk", RequestID: "q1", Outcome: "ok", Status: 200,
		Request: recording.Message{Header: http.Header{"Authorization": {"Bearer x"}}},
		Reply:   &recording.Message{Header: js, Body: fmt.Appendf(nil, `{"total":%d,"at":"12:00"}`, 3*price)}})
	w.Flush()
	file := filepath.Join(t.TempDir(), "rec.ndjson")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// desk quotes n items of a product, pricing it through the catalog.
func desk(catalog *http.Client) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /quote/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			http.Error(w, "a redacted credential was sent", http.StatusBadRequest)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), "GET", "metro:///products/"+r.PathValue("id"), nil)
		resp, err := catalog.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var p struct{ Price int }
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		n := 0
		fmt.Sscan(r.URL.Query().Get("n"), &n)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"total":%d,"at":"13:37"}`, n*p.Price)
	})
	return mux
}

func TestReplayWithMock(t *testing.T) {
	file := writeRecording(t, 50)
	metrotest.Replay(t, desk(metrotest.Mock(t, file, "catalog")), file, metrotest.Worker("desk"), metrotest.Ignore("$.at"))
	metrotest.Replay(t, desk(metrotest.Mock(t, file, "catalog")), file, metrotest.Filter("GET /quote/{id}"), metrotest.Ignore("$..at"))
}

// A reply that differs fails the test and names the field: checked by
// running a replay that must fail in a child test process.
func TestReplayReportsDifferences(t *testing.T) {
	if file := os.Getenv("METROTEST_FAILING_REPLAY"); file != "" {
		// The catalog now says 75: the recorded total of 150 no longer holds.
		changed := writeRecording(t, 75)
		metrotest.Replay(t, desk(metrotest.Mock(t, changed, "catalog")), file, metrotest.Worker("desk"))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplayReportsDifferences$", "-test.v")
	cmd.Env = append(os.Environ(), "METROTEST_FAILING_REPLAY="+writeRecording(t, 50))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the replay of a changed system passed:\n%s", out)
	}
	for _, want := range []string{
		"--- FAIL: TestReplayReportsDifferences/rec.ndjson:2_GET_/quote/apple?n=3",
		"body $.total: want 150, got 225",
		`body $.at: want "12:00", got "13:37"`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
