package config

import (
	"strings"
	"testing"
)

// TestFitGateway: the gateway's limits for a container's heap keep what
// the file sets when it fits, keep the defaults when they fit, shrink to
// what fits otherwise, and every result fits the heap.
func TestFitGateway(t *testing.T) {
	const mi = 1 << 20
	heapOf := func(limit int64) int64 { return limit / 10 * 9 } // GOMEMLIMIT, as metro deploy sets it
	tests := []struct {
		name       string
		src        string
		heap       int64
		wantFlight int
		wantBody   ByteSize
		wantErr    string
	}{
		{"defaults fit the default 256Mi", "", heapOf(256 * mi), DefaultMaxInFlight, DefaultMaxBodyMemory, ""},
		{"defaults kept under a larger limit", "", heapOf(1024 * mi), DefaultMaxInFlight, DefaultMaxBodyMemory, ""},
		{"both shrink under 128Mi", "", heapOf(128 * mi), int((heapOf(128*mi) - GatewayBaseMemory - 41*mi) / GatewayRequestMemory), 41 * mi, ""},
		{"a set limit that fits is kept", "gateway:\n  max_in_flight: 6000\n", heapOf(512 * mi), 6000, DefaultMaxBodyMemory, ""},
		{"the unset limit gives way to a set one", "gateway:\n  max_in_flight: 4000\n", heapOf(256 * mi), 4000,
			ByteSize(heapOf(256*mi) - GatewayBaseMemory - 4000*GatewayRequestMemory), ""},
		{"a set limit that does not fit", "gateway:\n  max_in_flight: 20000\n", heapOf(256 * mi), 0, 0,
			"metro.yaml:2: gateway.max_in_flight: the gateway does not fit its memory limit (deploy.gateway.resources.limits.memory): 20000 requests in flight"},
		{"no limit under a memory limit", "gateway:\n  max_body_memory: 0\n", heapOf(256 * mi), 0, 0,
			"metro.yaml:2: gateway.max_body_memory: 0 (no limit) lets request bodies take the gateway past its memory limit"},
		{"a memory limit too small for anything", "", heapOf(32 * mi), 0, 0,
			"deploy.gateway.resources.limits.memory: the gateway does not fit its memory limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("metro.yaml", t.TempDir(), []byte("name: p\n"+tc.src))
			if err != nil {
				t.Fatal(err)
			}
			// Lines in the messages count the "name" line added above.
			flight, body, err := c.FitGateway(tc.heap, "deploy.gateway.resources.limits.memory")
			if tc.wantErr != "" {
				want := strings.Replace(tc.wantErr, "metro.yaml:2:", "metro.yaml:3:", 1)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if flight != tc.wantFlight || body != tc.wantBody {
				t.Errorf("limits %d, %s; want %d, %s", flight, body, tc.wantFlight, tc.wantBody)
			}
			if need, ok := GatewayMemory(flight, body); !ok || need > tc.heap || body < c.Gateway.HeldBody() {
				t.Errorf("%d requests and %s of bodies need %d bytes, heap %d", flight, body, need, tc.heap)
			}
		})
	}
}

// TestBodyMemoryHoldsTheLargestBody: left to its default, the body budget
// grows to the most of one body the gateway holds (gateway.max_body, up
// to MaxHeldBody: a larger body streams, two parts at a time), so such a
// body can be read; chosen smaller, in the file or the environment, it is
// an error there.
func TestBodyMemoryHoldsTheLargestBody(t *testing.T) {
	for _, tc := range []struct {
		maxBody string
		held    ByteSize
	}{
		{"1GiB", MaxHeldBody},
		{"7MiB", 7 << 20},
	} {
		var g Gateway
		if err := g.MaxBody.Set(tc.maxBody); err != nil {
			t.Fatal(err)
		}
		if got := g.HeldBody(); got != tc.held {
			t.Errorf("max_body %s: HeldBody %s, want %s", tc.maxBody, got, tc.held)
		}
		g.MaxBodyMemory = 2 << 20
		if got := g.BodyMemory(); got != tc.held {
			t.Errorf("max_body %s, max_body_memory 2MiB: BodyMemory %s, want %s", tc.maxBody, got, tc.held)
		}
	}
	c, err := Parse("metro.yaml", t.TempDir(), []byte("gateway:\n  max_body: 1GiB\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Gateway.BodyMemory(); got != DefaultMaxBodyMemory {
		t.Errorf("BodyMemory %s, want the default %s: a body over %s streams", got, ByteSize(DefaultMaxBodyMemory), ByteSize(MaxHeldBody))
	}
	if err := c.ApplyEnv(func(k string) string { return map[string]string{"METRO_MAX_BODY_MEMORY": "4MiB"}[k] }); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "METRO_MAX_BODY_MEMORY: 4MiB is less than the 8MiB of one body the gateway may hold") {
		t.Errorf("Validate = %v, want the variable named", err)
	}
}
