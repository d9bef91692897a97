package proxy_test

import (
	"testing"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// TestConfigFromLimits: metro.yaml's limits reach the gateway (metro
// gateway and metro dev both build it with ConfigFrom); 0 in the file is
// no limit, which Config spells negative, its 0 being the default.
func TestConfigFromLimits(t *testing.T) {
	tests := []struct {
		name       string
		src        string
		wantFlight int
		wantBody   int64
	}{
		{"defaults", "", config.DefaultMaxInFlight, config.DefaultMaxBodyMemory},
		{"set", "gateway:\n  max_in_flight: 10\n  max_body_memory: 8MiB\n", 10, 8 << 20},
		{"none", "gateway:\n  max_in_flight: 0\n  max_body_memory: 0\n", -1, -1},
		{"a larger body streams", "gateway:\n  max_body: 100MiB\n", config.DefaultMaxInFlight, config.DefaultMaxBodyMemory},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse("metro.yaml", t.TempDir(), []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			g, err := proxy.ConfigFrom(c)
			if err != nil {
				t.Fatal(err)
			}
			if g.MaxInFlight != tc.wantFlight || g.MaxBodyMemory != tc.wantBody {
				t.Errorf("MaxInFlight %d, MaxBodyMemory %d; want %d, %d", g.MaxInFlight, g.MaxBodyMemory, tc.wantFlight, tc.wantBody)
			}
		})
	}
}
