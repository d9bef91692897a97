package httpserve

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/metrotest"
)

func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addr := metrotest.NewFirstLine()
	done := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok "+r.URL.Path) })
	go func() { done <- Run(ctx, "127.0.0.1:0", h, addr) }()
	var a string
	select {
	case a = <-addr.C:
	case err := <-done:
		t.Fatalf("Run returned before announcing: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no address announced after 10s")
	}
	resp, err := http.Get("http://" + a + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok /x" {
		t.Errorf("GET /x = %d %q, want 200 \"ok /x\"", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
	if _, err := http.Get("http://" + a + "/x"); err == nil {
		t.Error("server still answers after shutdown")
	}
}

func TestRunListenError(t *testing.T) {
	if err := Run(context.Background(), "127.0.0.1:-1", http.NotFoundHandler(), io.Discard); err == nil {
		t.Error("Run on a bad address succeeded")
	}
}
