package main

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/bench/blob"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natsconn"
	"github.com/metropolis-dev/metro/internal/natstest"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// TestKilledMidStream: a worker process killed while it streams a reply
// ends the client's response visibly cut short (no last chunk: the client
// reads an unexpected EOF, never a complete-looking body), at once rather
// than at the route's timeout, and the gateway logs it.
func TestKilledMidStream(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "worker")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building the worker: %v\n%s", err, out)
	}
	s := natstest.Run(t)
	cmd := exec.Command(bin, "-blob")
	cmd.Env = append(os.Environ(), "NATS_URL="+s.ClientURL(), "METRO_PREFIX=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.Contains(line, "ready") {
		t.Fatalf("the worker's first line: %q %v", line, err)
	}
	go io.Copy(io.Discard, stdout)

	var logs metrotest.LockedBuffer
	gw, srv := metrotest.StartGateway(t, natstest.Connect(t, s), proxy.Config{
		Timeout: 10 * time.Minute, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	metrotest.WaitRoutes(t, gw, blob.Download)
	resp, err := http.Get(srv.URL + blob.Path + "?bytes=" + strconv.Itoa(1<<30))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatalf("the first MiB: %v", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	n, err := io.Copy(io.Discard, resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("after the worker was killed: %d more bytes, then %v; want the body cut short", n, err)
	}
	if !natsconn.Poll(t.Context(), time.Minute, func() bool { return strings.Contains(logs.String(), "streamed reply broke") }) {
		t.Errorf("the gateway did not log the broken stream:\n%s", logs.String())
	}
}
