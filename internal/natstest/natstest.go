// Package natstest starts real, embedded NATS servers for tests, on random
// loopback ports, shut down when the test ends.
package natstest

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Run starts an embedded nats-server for t and returns it; it is shut down
// in t.Cleanup. Use s.ClientURL() to connect.
func Run(t testing.TB) *server.Server {
	t.Helper()
	return RunWith(t, &server.Options{})
}

// RunWith is Run with options; Host and Port default to 127.0.0.1 and random.
func RunWith(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	opts.NoLog = true
	opts.NoSigs = true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("natstest: server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// FreePort is a loopback port that nothing listens on, for a server that a
// test starts later (or restarts) at a known address.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Connect returns a client connection to s, closed in t.Cleanup.
func Connect(t testing.TB, s *server.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Cluster is a cluster of embedded servers on loopback, joined by routes,
// that a test may stop and start again one by one, as a rolling restart
// of a StatefulSet does.
type Cluster struct {
	t       testing.TB
	opts    []*server.Options
	Servers []*server.Server
}

// RunCluster starts n servers named s0, s1... in one cluster and waits
// until each has a route to every other. Lame duck mode takes lameDuck
// (closing clients after a grace period of a third of it).
//
// Each server listens on ports the kernel picks, so no other test can take
// them between choosing and listening; a server routes to those started
// before it. A restarted server comes back on the ports it had.
func RunCluster(t testing.TB, n int, lameDuck time.Duration) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	t.Cleanup(func() {
		for _, s := range c.Servers {
			s.Shutdown()
			s.WaitForShutdown()
		}
	})
	for i := 0; i < n; i++ {
		c.opts = append(c.opts, &server.Options{
			ServerName:          "s" + strconv.Itoa(i),
			Host:                "127.0.0.1",
			Port:                server.RANDOM_PORT,
			Cluster:             server.ClusterOpts{Name: "metro-test", Host: "127.0.0.1", Port: server.RANDOM_PORT},
			Routes:              c.routes(i),
			LameDuckDuration:    lameDuck,
			LameDuckGracePeriod: lameDuck / 3,
		})
		s := c.start(i)
		c.Servers = append(c.Servers, s)
		c.opts[i].Port = s.Addr().(*net.TCPAddr).Port
		c.opts[i].Cluster.Port = s.ClusterAddr().Port
	}
	c.WaitRoutes()
	return c
}

// routes are the cluster URLs of every server started, but server i.
func (c *Cluster) routes(i int) []*url.URL {
	var routes []*url.URL
	for j, o := range c.opts {
		if j != i && o.Cluster.Port > 0 {
			routes = append(routes, &url.URL{Scheme: "nats", Host: net.JoinHostPort(o.Cluster.Host, strconv.Itoa(o.Cluster.Port))})
		}
	}
	return routes
}

func (c *Cluster) start(i int) *server.Server {
	c.t.Helper()
	o := *c.opts[i]
	o.NoLog, o.NoSigs = true, true
	s, err := server.NewServer(&o)
	if err != nil {
		c.t.Fatalf("natstest: new server %d: %v", i, err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		c.t.Fatalf("natstest: server %d not ready", i)
	}
	return s
}

// URLs is every server's client URL, comma-separated, as nats.Connect
// takes them.
func (c *Cluster) URLs() string {
	var urls []string
	for _, o := range c.opts {
		urls = append(urls, "nats://"+net.JoinHostPort(o.Host, strconv.Itoa(o.Port)))
	}
	return strings.Join(urls, ",")
}

// WaitRoutes waits until every server has a route to every other.
func (c *Cluster) WaitRoutes() {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range c.Servers {
		for s.NumRoutes() < len(c.Servers)-1 {
			if time.Now().After(deadline) {
				c.t.Fatalf("natstest: server %s has %d routes", s.Name(), s.NumRoutes())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Restart puts server i in lame duck mode, which closes its clients over
// the lame duck duration and then stops it, starts it again on the same
// ports and waits until the cluster is whole.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.Servers[i].LameDuckShutdown()
	c.Servers[i].WaitForShutdown()
	// Back, it routes to every other server itself, as each server of a
	// StatefulSet lists all the others, rather than waiting for theirs to
	// find it.
	c.opts[i].Routes = c.routes(i)
	c.Servers[i] = c.start(i)
	c.WaitRoutes()
}
