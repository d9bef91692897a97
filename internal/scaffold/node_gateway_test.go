package scaffold

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natsauth"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// testNodeThroughGateway runs streamsJS behind the real gateway on a
// locked bus, as metro dev runs them: HTTP in, streams over NATS to and
// from the Node worker, HTTP out.
func testNodeThroughGateway(t *testing.T, wd string) {
	s := natstest.Locked(t, natsauth.Project{Workers: []natsauth.Worker{{Name: "streams"}}})
	startNode(t, wd, "streams.js", "NATS_URL="+s.ClientURL(), "METRO_HEALTH_ADDR=", "NATS_NKEY="+s.Seed(natsauth.WorkerID("streams")))
	gw, srv := metrotest.StartGateway(t, s.Connect(t, string(natsauth.RoleGateway)), proxy.Config{MaxBody: 64 << 20, Timeout: time.Minute})
	metrotest.WaitRoutes(t, gw, "GET /download/{n}", "GET /events", "POST /events/next", "PUT /upload")

	t.Run("download", func(t *testing.T) {
		const n = 6<<20 + 4321 // six times max_payload, and not a whole number of parts
		resp, err := http.Get(srv.URL + "/download/" + strconv.Itoa(n))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading the download after %d bytes: %v", len(got), err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("download: %s %v", resp.Status, resp.Header)
		}
		if want := testPattern(0, n); !bytes.Equal(got, want) {
			t.Fatalf("download of %d bytes differs from the %d written (first difference at %d)", len(got), len(want), firstDiff(got, want))
		}
	})

	t.Run("server-sent events one by one", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("events: %s %v", resp.Status, resp.Header)
		}
		events := bufio.NewReader(resp.Body)
		for k := 0; k < 5; k++ {
			// Event k arrives while the handler waits to be told to write
			// event k+1: it was sent when flushed, not when the handler
			// returned.
			line, err := events.ReadString('\n')
			if err != nil {
				t.Fatalf("event %d: %v", k, err)
			}
			if blank, _ := events.ReadString('\n'); line != fmt.Sprintf("data: %d\n", k) || blank != "\n" {
				t.Fatalf("event %d is %q %q", k, line, blank)
			}
			if k < 4 {
				next, err := http.Post(srv.URL+"/events/next", "", nil)
				if err != nil {
					t.Fatal(err)
				}
				next.Body.Close()
				if next.StatusCode != 200 {
					t.Fatalf("telling the handler to write event %d: %s (it was not waiting)", k+1, next.Status)
				}
			}
		}
		if rest, err := io.ReadAll(events); err != nil || len(rest) != 0 {
			t.Errorf("after the last event: %q, %v", rest, err)
		}
	})

	t.Run("upload", func(t *testing.T) {
		body := testPattern(0, 5<<20+99)
		req, err := http.NewRequest("PUT", srv.URL+"/upload", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, text := metrotest.Do(t, req)
		var got struct {
			Sha256   string
			Bytes    int
			Streamed bool
		}
		if err := json.Unmarshal([]byte(text), &got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("upload: %s %s", resp.Status, text)
		}
		sum := sha256.Sum256(body)
		if got.Sha256 != hex.EncodeToString(sum[:]) || got.Bytes != len(body) || !got.Streamed {
			t.Errorf("the handler read %+v, want %d bytes streamed with sha256 %x", got, len(body), sum)
		}
	})

	t.Run("chunked JSON within half a message", func(t *testing.T) {
		// Over one part, so the gateway streams it, and under half of
		// max_payload, so the worker hands it to req.json() whole.
		items := make([]int, 40000)
		body, _ := json.Marshal(items)
		resp, text := metrotest.Do(t, mustRequest(t, "POST", srv.URL+"/json", io.MultiReader(bytes.NewReader(body))))
		if resp.StatusCode != 200 || text != `{"items":40000,"streamed":false}` {
			t.Errorf("chunked JSON of %d bytes: %s %s", len(body), resp.Status, text)
		}
	})

	t.Run("client goes away", func(t *testing.T) {
		nc := s.Connect(t, string(natsauth.RoleTools))
		before := feedCancels(t, nc)
		resp, err := http.Get(srv.URL + "/feed")
		if err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != "tick 0\n" {
			t.Fatalf("feed: %q %v", line, err)
		}
		resp.Body.Close()
		got := waitFeedCancel(t, nc, before)
		if !got.Aborted || !strings.Contains(got.Reason, "cancelled") {
			t.Errorf("after the client left, the handler saw %+v", got)
		}
	})

	t.Run("chunked upload", func(t *testing.T) {
		body := testPattern(7, 3<<20)
		// A reader the client cannot measure: sent chunked.
		req, err := http.NewRequest("PUT", srv.URL+"/upload", io.MultiReader(bytes.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp, text := metrotest.Do(t, req)
		sum := sha256.Sum256(body)
		if resp.StatusCode != 200 || !strings.Contains(text, hex.EncodeToString(sum[:])) {
			t.Errorf("chunked upload: %s %s, want sha256 %x", resp.Status, text, sum)
		}
	})
}

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
