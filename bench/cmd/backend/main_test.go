package main

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/bench/blob"
	"github.com/metropolis-dev/metro/bench/hello"
	"github.com/metropolis-dev/metro/internal/metrotest"
)

func TestBackendServesHello(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addr := metrotest.NewFirstLine()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-listen", "127.0.0.1:0"}, addr) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("backend: %v", err)
		}
	})
	var a string
	select {
	case a = <-addr.C:
	case <-time.After(10 * time.Second):
		t.Fatal("backend did not announce its address")
	}
	for _, path := range []string{hello.Path, "/anything"} {
		resp, err := http.Get("http://" + a + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != string(hello.Body) || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("GET %s = %d %q (%s)", path, resp.StatusCode, body, resp.Header.Get("Content-Type"))
		}
	}
	// Under /blob, the large-transfer scenario's routes.
	resp, err := http.Get("http://" + a + blob.Path + "?bytes=70000")
	if err != nil {
		t.Fatal(err)
	}
	chk := blob.NewChecker()
	_, err = io.Copy(chk, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || chk.Err(70000) != nil {
		t.Errorf("GET %s: %d, %d bytes, err %v, check %v", blob.Path, resp.StatusCode, chk.N, err, chk.Err(70000))
	}
	resp, err = http.Post("http://"+a+blob.Path, "application/octet-stream", blob.NewReader(12345))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "12345" {
		t.Errorf("POST %s = %d %q, want 200 \"12345\"", blob.Path, resp.StatusCode, body)
	}
}
