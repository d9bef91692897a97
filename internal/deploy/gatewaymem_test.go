package deploy

import (
	"strconv"
	"strings"
	"testing"

	"github.com/metropolis-dev/metro/internal/config"
)

// TestGatewayLimitsFitMemory: the gateway pods' metro.yaml caps requests
// in flight and buffered bodies so that what they can hold, at the cost
// config's figures say, fits under the GOMEMLIMIT of the same Deployment;
// a limit the user sets that cannot fit is an error at its line.
func TestGatewayLimitsFitMemory(t *testing.T) {
	tests := []struct {
		name, gateway, memory string
		wantFlight            int // 0: only check that it fits
		wantErr               string
	}{
		{name: "defaults", wantFlight: config.DefaultMaxInFlight},
		{name: "a larger pod keeps the defaults", memory: "1Gi", wantFlight: config.DefaultMaxInFlight},
		{name: "a smaller pod gets smaller limits", memory: "128Mi"},
		{name: "a large max_body takes room from requests", gateway: "  max_body: 6MiB\n", memory: "100Mi"},
		{name: "a max_body past what a message holds streams", gateway: "  max_body: 1GiB\n", memory: "256Mi"},
		{name: "a set limit that fits", gateway: "  max_in_flight: 4000\n", memory: "512Mi", wantFlight: 4000},
		{name: "a set limit too large", gateway: "  max_in_flight: 20000\n",
			wantErr: "metro.yaml:4: gateway.max_in_flight: the gateway does not fit its memory limit (deploy.gateway.resources.limits.memory): 20000 requests in flight"},
		{name: "a memory limit too small", memory: "32Mi",
			wantErr: "metro.yaml:8: deploy.gateway.resources.limits.memory: the gateway does not fit its memory limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "name: shop\ngateway:\n  listen: \":8080\"\n" + tc.gateway + "deploy:\n  registry: r\n"
			if tc.memory != "" {
				src += "  gateway:\n    resources:\n      limits: {memory: " + tc.memory + "}\n"
			}
			c, err := config.Parse("metro.yaml", t.TempDir(), []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			ms, err := Render(c, Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := decodeAll(t, YAML(ms))
			// What the pods read, read as the gateway reads it.
			pods, err := config.Parse("metro.yaml", t.TempDir(), []byte(d.configMaps["shop-gateway-config"].Data["metro.yaml"]))
			if err != nil {
				t.Fatalf("the gateway's metro.yaml: %v", err)
			}
			var heap int64
			for _, e := range d.deployments["shop-gateway"].Spec.Template.Spec.Containers[0].Env {
				if e.Name == "GOMEMLIMIT" {
					heap, _ = strconv.ParseInt(e.Value, 10, 64)
				}
			}
			g := pods.Gateway
			need, ok := config.GatewayMemory(g.MaxInFlight, g.BodyMemory())
			t.Logf("max_in_flight %d, max_body_memory %s: %d bytes of %d", g.MaxInFlight, g.MaxBodyMemory, need, heap)
			if heap == 0 || !ok || need > heap {
				t.Errorf("max_in_flight %d and max_body_memory %s need %d bytes; GOMEMLIMIT is %d", g.MaxInFlight, g.MaxBodyMemory, need, heap)
			}
			if g.MaxBodyMemory < g.HeldBody() || g.MaxInFlight < 1 {
				t.Errorf("limits %d, %s leave no room (max_body %s)", g.MaxInFlight, g.MaxBodyMemory, g.MaxBody)
			}
			if tc.wantFlight != 0 && g.MaxInFlight != tc.wantFlight {
				t.Errorf("max_in_flight %d, want %d", g.MaxInFlight, tc.wantFlight)
			}
		})
	}
}
