package natsconn_test

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natsconn"
	"github.com/metropolis-dev/metro/internal/natstest"
)

// countingDialer dials as nats.go would and counts the attempts.
type countingDialer struct {
	net.Dialer
	n atomic.Int64
}

func (d *countingDialer) Dial(network, address string) (net.Conn, error) {
	d.n.Add(1)
	return d.Dialer.Dial(network, address)
}

// TestDialWaitsForAServerThatIsNotUpYet: with nothing listening, Dial
// returns a connection that retries in the background, says why once
// rather than at every attempt, and connects when the server starts.
func TestDialWaitsForAServerThatIsNotUpYet(t *testing.T) {
	port := natstest.FreePort(t)
	var logs metrotest.LockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	dialer := &countingDialer{}
	nc, lost, err := natsconn.Dial("nats://127.0.0.1:"+strconv.Itoa(port), log,
		nats.SetCustomDialer(dialer), nats.ReconnectWait(10*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatalf("Dial with no server yet: %v", err)
	}
	defer nc.Close()
	if nc.IsConnected() {
		t.Fatal("connected with no server")
	}
	metrotest.WaitFor(t, "a few failed attempts", 20*time.Second, func() bool { return dialer.n.Load() >= 5 })
	if n := strings.Count(logs.String(), "NATS not reachable; retrying"); n != 1 {
		t.Fatalf("%d lines about retrying, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("the retrying line does not say why:\n%s", logs.String())
	}

	natstest.RunWith(t, &server.Options{Port: port})
	metrotest.WaitFor(t, "the connection", 20*time.Second, nc.IsConnected)
	metrotest.WaitFor(t, "the connected line", 20*time.Second, func() bool { return strings.Contains(logs.String(), "NATS connected") })
	requestAcross(t, nc)
	select {
	case err := <-lost:
		t.Fatalf("lost while connected: %v", err)
	default:
	}

	// Closing its own connection is no news: lost hears of it (after any
	// disconnect callback, as nats.go runs them in order) and nothing is
	// logged.
	nc.Close()
	<-lost
	if strings.Contains(logs.String(), "disconnected") {
		t.Errorf("a close of our own was logged:\n%s", logs.String())
	}
}

// TestDialRefused: a server that is there but refuses the connection is
// an error at once, saying what it refused; so is something on the port
// that is not NATS.
func TestDialRefused(t *testing.T) {
	_, nkeyOpts := natstest.NKeyUser(t)
	locked := natstest.RunWith(t, nkeyOpts)
	notNATS := httptest.NewServer(http.NotFoundHandler())
	defer notNATS.Close()
	tests := []struct {
		name, url, wantErr string
	}{
		{"no credentials", locked.ClientURL(), "authorization violation"},
		{"a wrong password, not shown", strings.Replace(locked.ClientURL(), "nats://", "nats://me:hunter2@", 1), "nats://me:xxxxx@"},
		{"an HTTP server", "nats://" + notNATS.Listener.Addr().String(), "connecting to NATS at nats://" + notNATS.Listener.Addr().String()},
		{"not a URL", "nats://[::1", "connecting to NATS at nats://[::1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs metrotest.LockedBuffer
			nc, _, err := natsconn.Dial(tc.url, slog.New(slog.NewTextHandler(&logs, nil)), nats.Timeout(time.Second))
			if err == nil {
				nc.Close()
				t.Fatal("Dial succeeded")
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.wantErr)) {
				t.Fatalf("error %q, want one containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error()+logs.String(), "hunter2") {
				t.Errorf("the password was shown: %v\n%s", err, logs.String())
			}
			if strings.Contains(logs.String(), "retrying") {
				t.Errorf("a refusal was retried:\n%s", logs.String())
			}
		})
	}
}

// TestDialLostForGood: when the server comes back refusing the
// connection's credentials, nats.go gives up; lost then says why.
func TestDialLostForGood(t *testing.T) {
	seed, nkeyOpts, revoked := natstest.NKeyUserToRevoke(t)
	ns := natstest.RunWith(t, nkeyOpts)
	auth, err := natsconn.Auth{NKey: seed}.Options()
	if err != nil {
		t.Fatal(err)
	}
	var logs metrotest.LockedBuffer
	nc, lost, err := natsconn.Dial(ns.ClientURL(), slog.New(slog.NewTextHandler(&logs, nil)),
		append(auth, nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	requestAcross(t, nc)

	ns.Shutdown()
	ns.WaitForShutdown()
	natstest.RunWith(t, revoked)
	select {
	case err := <-lost:
		if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
			t.Fatalf("lost: %v, want the authorization violation", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("not lost after the server refused the credentials; logs:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "NATS disconnected") {
		t.Errorf("the disconnection was not logged:\n%s", logs.String())
	}
}
