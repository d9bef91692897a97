package deploy

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/policy"
	"github.com/metropolis-dev/metro/internal/proxy"
)

// TestGatewayPolicies: the shop's edge policies reach the gateway pods.
// The ConfigMap's files, laid out as the pod mounts them, load into the
// same policies, and a token minted with the shop's development key is
// verified against the JWKS file that travelled in the ConfigMap.
func TestGatewayPolicies(t *testing.T) {
	c := load(t, "../../examples/shop")
	out, err := Render(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := decodeAll(t, YAML(out))
	gatewayConfig(t, d) // checks the args and the mount
	var cm string
	for _, x := range d.deployments {
		if x.Labels["app.kubernetes.io/component"] == "gateway" {
			for _, v := range x.Spec.Template.Spec.Volumes {
				if v.ConfigMap != nil {
					cm = v.ConfigMap.Name
				}
			}
		}
	}
	dir := t.TempDir() // as /etc/metro in the pod
	for name, data := range d.configMaps[cm].Data {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	gc, err := config.Load(filepath.Join(dir, "metro.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !gc.Gateway.HasJWT() || *gc.Gateway.Auth.JWT != (config.JWT{JWKS: jwksKey, Issuer: "metro-dev", Audience: "shop"}) {
		t.Errorf("gateway auth: %+v (project: %+v)", gc.Gateway.Auth, c.Gateway.Auth.JWT)
	}
	if len(gc.Gateway.Routes) != len(c.Gateway.Routes) || gc.Gateway.Routes[0].RateLimit == nil || *gc.Gateway.Routes[0].RateLimit != *c.Gateway.Routes[0].RateLimit {
		t.Errorf("gateway routes %+v, project's %+v", gc.Gateway.Routes, c.Gateway.Routes)
	}
	set, err := proxy.PoliciesFrom(gc)
	if err != nil || set == nil || set.Verifier() == nil {
		t.Fatalf("policies of the gateway's metro.yaml: %v, %v", set, err)
	}
	keyData, err := os.ReadFile("../../examples/shop/dev-key.json")
	if err != nil {
		t.Fatal(err)
	}
	k, err := policy.ParseSigningKey(keyData)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := k.Mint(map[string]any{"iss": "metro-dev", "aud": "shop", "sub": "alice", "exp": time.Now().Add(time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := set.Verifier().Verify(context.Background(), tok); err != nil {
		t.Errorf("the development token does not verify in the pod's gateway: %v", err)
	}
}
