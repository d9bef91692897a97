package deploy

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/natsauth"
	"github.com/metropolis-dev/metro/internal/natstest"
)

// checkConfig runs nats-server's own configuration check, the code path
// of `nats-server -t -c FILE`: warnings count as errors there.
func checkConfig(t *testing.T, path string) {
	t.Helper()
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	opts, err := server.ConfigureOptions(fs, []string{"-t", "-c", path}, func() {}, func() {}, func() {})
	if err != nil || !opts.CheckConfig {
		conf, _ := os.ReadFile(path)
		t.Fatalf("nats-server -t: %v\n%s", err, conf)
	}
}

// podSecrets lists the Secrets a pod template mounts or reads.
func podSecrets(spec corev1.PodSpec) []string {
	var out []string
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			out = append(out, v.Secret.SecretName)
		}
	}
	for _, c := range spec.Containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				out = append(out, e.ValueFrom.SecretKeyRef.Name+"/"+e.ValueFrom.SecretKeyRef.Key)
			}
		}
	}
	return out
}

// checkCredentials holds each pod to its own credentials: the gateway's
// and each worker's seed only in their pods, the NATS servers none, the
// tools' in no pod at all.
func checkCredentials(t *testing.T, c *config.Config, d *decoded) {
	t.Helper()
	for n, dep := range d.deployments {
		id := string(natsauth.RoleGateway)
		if w := strings.TrimPrefix(n, c.Name+"-"); dep.Labels["app.kubernetes.io/component"] == "worker" {
			id = natsauth.WorkerID(w)
		}
		want := []string{secretName(c.Name, id)}
		if got := podSecrets(dep.Spec.Template.Spec); !slices.Equal(got, want) {
			t.Errorf("Deployment/%s reads Secrets %v, want %v", n, got, want)
		}
		env := map[string]string{}
		for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
			env[e.Name] = e.Value
		}
		if env["NATS_NKEY"] != credsMount+"/"+nkeyFile {
			t.Errorf("Deployment/%s: NATS_NKEY %q", n, env["NATS_NKEY"])
		}
	}
	for n, s := range d.statefulSets {
		for _, sec := range podSecrets(s.Spec.Template.Spec) {
			if !strings.HasSuffix(sec, "/"+nkeyPubFile) {
				t.Errorf("StatefulSet/%s reads the Secret %s, more than public keys", n, sec)
			}
		}
	}
}

// startFromConfigMap runs a real server on the nats.conf the manifests
// carry, on free loopback ports and alone (its cluster routes name pods).
func startFromConfigMap(t *testing.T, d *decoded) *server.Server {
	t.Helper()
	if len(d.statefulSets) != 1 {
		t.Fatalf("%d StatefulSets", len(d.statefulSets))
	}
	var conf string
	for n, s := range d.statefulSets {
		t.Setenv("SERVER_NAME", n+"-0")
		for _, v := range s.Spec.Template.Spec.Volumes {
			if v.ConfigMap != nil {
				conf = d.configMaps[v.ConfigMap.Name].Data["nats.conf"]
			}
		}
	}
	p := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	checkConfig(t, p)
	opts, err := server.ProcessConfigFile(p)
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.HTTPPort, opts.PidFile = "127.0.0.1", server.RANDOM_PORT, 0, ""
	opts.Cluster, opts.Routes = server.ClusterOpts{}, nil
	return natstest.RunWith(t, opts)
}

// connectAs connects with the seed in an emitted Secret.
func connectAs(t *testing.T, s *server.Server, d *decoded, secret string, inbox nats.Option) *nats.Conn {
	t.Helper()
	sec, ok := d.secrets[secret]
	if !ok {
		t.Fatalf("no Secret %s", secret)
	}
	p := filepath.Join(t.TempDir(), "seed")
	if err := os.WriteFile(p, sec.Data[nkeyFile], 0o600); err != nil {
		t.Fatal(err)
	}
	nk, err := nats.NkeyOptionFromSeed(p)
	if err != nil {
		t.Fatal(err)
	}
	return natstest.Connect(t, s, nk, inbox, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
}

// refused does op and reports the server's refusal (-ERR comes before
// the PONG of the flush).
func refused(t *testing.T, nc *nats.Conn, op func() error) error {
	t.Helper()
	before := nc.LastError()
	if err := op(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.LastError(); err != before && errors.Is(err, nats.ErrPermissionViolation) {
		return err
	}
	return nil
}

// checkLockedCluster runs the emitted NATS configuration and connects
// with the emitted credentials of examples/shop: each identity does what
// it must and is refused the rest.
func checkLockedCluster(t *testing.T, c *config.Config, d *decoded) {
	t.Helper()
	s := startFromConfigMap(t, d)
	if _, err := nats.Connect(s.ClientURL()); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("anonymous connection: %v, want an authorization violation", err)
	}
	id := func(w string) string { return secretName(c.Name, natsauth.WorkerID(w)) }
	gw := connectAs(t, s, d, secretName(c.Name, "gateway"), nats.CustomInboxPrefix(natsauth.InboxPrefix(natsauth.RoleGateway, "")))
	catalog := connectAs(t, s, d, id("catalog"), nats.CustomInboxPrefix(natsauth.InboxPrefix(natsauth.RoleWorker, "catalog")))
	orders := connectAs(t, s, d, id("orders"), nats.CustomInboxPrefix(natsauth.InboxPrefix(natsauth.RoleWorker, "orders")))
	tap := connectAs(t, s, d, secretName(c.Name, "tap"), nats.CustomInboxPrefix(natsauth.InboxPrefix(natsauth.RoleTap, "")))

	sub := func(nc *nats.Conn, subj, queue string) func() error {
		return func() error {
			_, err := nc.QueueSubscribeSync(subj, queue)
			return err
		}
	}
	pub := func(nc *nats.Conn, subj string) func() error { return func() error { return nc.Publish(subj, nil) } }
	for _, tt := range []struct {
		who   string
		nc    *nats.Conn
		op    func() error
		allow bool
	}{
		{"catalog serves its route", catalog, sub(catalog, "products.*.GET", "catalog"), true},
		{"orders calls the catalog", orders, pub(orders, "products.apple.GET"), true},
		{"the gateway publishes a route", gw, pub(gw, "orders.POST"), true},
		{"tap watches", tap, sub(tap, ">", ""), true},
		{"the gateway subscribes >", gw, sub(gw, ">", ""), false},
		{"catalog subscribes >", catalog, sub(catalog, ">", ""), false},
		{"catalog publishes to orders' route", catalog, pub(catalog, "orders.POST"), false},
		{"catalog answers in orders' queue group", catalog, sub(catalog, "orders.POST", "orders"), false},
		{"orders joins catalog's queue group", orders, sub(orders, "products.*.GET", "catalog"), false},
		{"catalog reads $SYS", catalog, sub(catalog, "$SYS.>", ""), false},
		{"tap reads $SYS", tap, sub(tap, "$SYS.>", ""), false},
		{"tap publishes", tap, pub(tap, "orders.POST"), false},
	} {
		err := refused(t, tt.nc, tt.op)
		if tt.allow != (err == nil) {
			t.Errorf("%s: refusal %v, want allowed=%v", tt.who, err, tt.allow)
		}
	}
}

// TestUserSecrets: with --user-secrets no Secret is emitted; pods read the
// user's by the same names, and the server its public keys from them.
func TestUserSecrets(t *testing.T) {
	c := load(t, "../../examples/shop")
	ms, err := Render(c, Options{UserSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	d := decodeAll(t, YAML(ms))
	if len(d.secrets) != 0 {
		t.Errorf("emitted %d Secrets", len(d.secrets))
	}
	checkCredentials(t, c, d)
	var env []string
	for _, s := range d.statefulSets {
		for _, e := range s.Spec.Template.Spec.Containers[0].Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				env = append(env, e.Name)
			}
		}
	}
	if !slices.Contains(env, "NKEY_GATEWAY") || !slices.Contains(env, "NKEY_WORKER_CATALOG") {
		t.Fatalf("NATS reads %v from Secrets", env)
	}
	// The server resolves the variables the Secrets fill.
	keys := natsauth.Keys{}
	p, _ := natsauth.FromConfig(c)
	users, _ := natsauth.Users(p)
	if _, err := keys.Fill(users); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		pk, _ := keys.Public(u.ID)
		t.Setenv(pubVar(u.ID), pk)
	}
	startFromConfigMap(t, d)
}

// TestExternalNATSPermissions: with nats.url set, the permissions the
// operator must grant come as a ConfigMap whose block nats-server reads.
func TestExternalNATSPermissions(t *testing.T) {
	c := load(t, "testdata/external")
	ms, err := Render(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := decodeAll(t, YAML(ms))
	block, ok := d.configMaps[c.Name+"-nats-permissions"].Data["authorization.conf"]
	if !ok {
		t.Fatalf("no permissions ConfigMap among %v", slices.Collect(mapsKeys(d.configMaps)))
	}
	p := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(p, []byte("port: 4222\n"+block), 0o600); err != nil {
		t.Fatal(err)
	}
	checkConfig(t, p)
	if len(d.netpols) != 0 {
		t.Error("a NetworkPolicy for a NATS metro does not run")
	}
	checkCredentials(t, c, d)
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// checkNetworkPolicy: the NATS pods admit clients from the project's pods
// on the client port and peers from NATS pods on the cluster port, and
// both selectors match the pods they mean.
func checkNetworkPolicy(t *testing.T, d *decoded) {
	t.Helper()
	if len(d.netpols) != 1 {
		t.Fatalf("%d NetworkPolicies, want 1", len(d.netpols))
	}
	np := d.netpols[0]
	matches := func(sel map[string]string, labels map[string]string) bool {
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return true
	}
	for n, s := range d.statefulSets {
		if !matches(np.Spec.PodSelector.MatchLabels, s.Spec.Template.Labels) {
			t.Errorf("NetworkPolicy does not select StatefulSet/%s's pods", n)
		}
	}
	if len(np.Spec.Ingress) != 2 {
		t.Fatalf("ingress rules %+v", np.Spec.Ingress)
	}
	clients, peers := np.Spec.Ingress[0], np.Spec.Ingress[1]
	if clients.Ports[0].Port.String() != "client" || peers.Ports[0].Port.String() != "cluster" {
		t.Errorf("ports %v and %v", clients.Ports, peers.Ports)
	}
	for n, dep := range d.deployments {
		if !matches(clients.From[0].PodSelector.MatchLabels, dep.Spec.Template.Labels) {
			t.Errorf("Deployment/%s's pods may not reach NATS", n)
		}
		if matches(peers.From[0].PodSelector.MatchLabels, dep.Spec.Template.Labels) {
			t.Errorf("Deployment/%s's pods may reach the cluster port", n)
		}
	}
}

// certificate is the part of cert-manager's Certificate (v1) that metro
// writes; cert-manager's Go types are not a dependency worth taking for
// a test, so its fields are spelled here from the CRD's schema.
type certificate struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		SecretName string `json:"secretName"`
		IssuerRef  struct {
			Name string `json:"name"`
			Kind string `json:"kind"`
		} `json:"issuerRef"`
		DNSNames   []string `json:"dnsNames"`
		Usages     []string `json:"usages"`
		PrivateKey struct {
			Algorithm      string `json:"algorithm"`
			Size           int    `json:"size"`
			RotationPolicy string `json:"rotationPolicy"`
		} `json:"privateKey"`
	} `json:"spec"`
}

// TestNATSTLS: one setting (deploy.nats.tls) asks cert-manager for the
// servers' certificate; the servers then require TLS from clients and on
// routes, and clients verify them with the CA they mount, nothing more.
func TestNATSTLS(t *testing.T) {
	c := load(t, "../../examples/shop")
	c.Deploy.NATS.TLS = &config.DeployTLS{Issuer: "shop-ca", Kind: "ClusterIssuer"}
	ms, err := Render(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := decodeAll(t, YAML(ms))
	if len(d.certificates) != 1 {
		t.Fatalf("%d Certificates", len(d.certificates))
	}
	cert := d.certificates[0]
	if cert.Spec.IssuerRef.Name != "shop-ca" || cert.Spec.IssuerRef.Kind != "ClusterIssuer" ||
		!slices.Contains(cert.Spec.DNSNames, "shop-nats") || !slices.Contains(cert.Spec.DNSNames, "*.shop-nats-headless.shop.svc") {
		t.Errorf("certificate %+v", cert.Spec)
	}
	for n, dep := range d.deployments {
		var ca []corev1.KeyToPath
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName == cert.Spec.SecretName {
				ca = v.Secret.Items
			}
		}
		if len(ca) != 1 || ca[0].Key != "ca.crt" {
			t.Errorf("Deployment/%s mounts %v of the NATS certificate, want ca.crt alone", n, ca)
		}
		env := map[string]string{}
		for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
			env[e.Name] = e.Value
		}
		if env["NATS_CA"] != tlsClientDir+"/ca.crt" {
			t.Errorf("Deployment/%s: NATS_CA %q", n, env["NATS_CA"])
		}
	}

	// The servers' configuration, with the certificate cert-manager would
	// put in the Secret, runs and demands TLS.
	files := natstest.WriteTLS(t)
	dir := t.TempDir()
	for src, dst := range map[string]string{files.ServerCert: "tls.crt", files.ServerKey: "tls.key", files.CA: "ca.crt"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for n, cm := range d.configMaps {
		if conf, ok := cm.Data["nats.conf"]; ok {
			if !strings.Contains(conf, "tls {") {
				t.Fatalf("ConfigMap/%s: no tls block", n)
			}
			cm.Data["nats.conf"] = strings.ReplaceAll(conf, tlsServerDir, dir)
		}
	}
	s := startFromConfigMap(t, d)
	gwSecret := secretName(c.Name, "gateway")
	seed := filepath.Join(t.TempDir(), "seed")
	if err := os.WriteFile(seed, d.secrets[gwSecret].Data[nkeyFile], 0o600); err != nil {
		t.Fatal(err)
	}
	nk, err := nats.NkeyOptionFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(s.ClientURL(), nk); err == nil {
		nc.Close()
		t.Fatal("a client that cannot verify the server connected")
	}
	nc, err := nats.Connect(s.ClientURL(), nk, nats.RootCAs(files.CA))
	if err != nil {
		t.Fatalf("connecting with the CA: %v", err)
	}
	defer nc.Close()
	if _, err := nc.TLSConnectionState(); err != nil {
		t.Errorf("not TLS: %v", err)
	}
}
