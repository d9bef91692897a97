package deploy

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/natsauth"
)

var update = flag.Bool("update", false, "rewrite golden files")

// testKeys holds the nkey seeds of the golden renderings (test-only keys).
const testKeys = "testdata/nkeys.json"

// serviceMonitor is the part of the Prometheus Operator's CRD that metro
// emits; k8s.io/api has no type for it.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// decoded holds every document of one rendering, strictly decoded.
type decoded struct {
	namespaces   []corev1.Namespace
	configMaps   map[string]corev1.ConfigMap
	services     map[string]corev1.Service
	statefulSets map[string]appsv1.StatefulSet
	deployments  map[string]appsv1.Deployment
	pdbs         []policyv1.PodDisruptionBudget
	hpas         []autoscalingv2.HorizontalPodAutoscaler
	ingresses    []networkingv1.Ingress
	monitors     []serviceMonitor
	secrets      map[string]corev1.Secret
	netpols      []networkingv1.NetworkPolicy
	certificates []certificate
}

// strict decodes one YAML document into v, failing on any field that v's
// type does not have: a typo in a template cannot pass as valid.
func strict(t *testing.T, doc []byte, v any) {
	t.Helper()
	j, err := sigsyaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatalf("document is not YAML: %v\n%s", err, doc)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("document does not decode strictly into %T: %v\n%s", v, err, doc)
	}
}

func decodeAll(t *testing.T, stream []byte) *decoded {
	t.Helper()
	d := &decoded{
		configMaps: map[string]corev1.ConfigMap{}, services: map[string]corev1.Service{},
		statefulSets: map[string]appsv1.StatefulSet{}, deployments: map[string]appsv1.Deployment{},
		secrets: map[string]corev1.Secret{},
	}
	for _, doc := range bytes.Split(stream, []byte("\n---\n")) {
		var tm metav1.TypeMeta
		if err := sigsyaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("document is not YAML: %v\n%s", err, doc)
		}
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Namespace":
			var o corev1.Namespace
			strict(t, doc, &o)
			d.namespaces = append(d.namespaces, o)
		case "v1 ConfigMap":
			var o corev1.ConfigMap
			strict(t, doc, &o)
			d.configMaps[o.Name] = o
		case "v1 Service":
			var o corev1.Service
			strict(t, doc, &o)
			d.services[o.Name] = o
		case "apps/v1 StatefulSet":
			var o appsv1.StatefulSet
			strict(t, doc, &o)
			d.statefulSets[o.Name] = o
		case "apps/v1 Deployment":
			var o appsv1.Deployment
			strict(t, doc, &o)
			d.deployments[o.Name] = o
		case "policy/v1 PodDisruptionBudget":
			var o policyv1.PodDisruptionBudget
			strict(t, doc, &o)
			d.pdbs = append(d.pdbs, o)
		case "autoscaling/v2 HorizontalPodAutoscaler":
			var o autoscalingv2.HorizontalPodAutoscaler
			strict(t, doc, &o)
			d.hpas = append(d.hpas, o)
		case "networking.k8s.io/v1 Ingress":
			var o networkingv1.Ingress
			strict(t, doc, &o)
			d.ingresses = append(d.ingresses, o)
		case "v1 Secret":
			var o corev1.Secret
			strict(t, doc, &o)
			d.secrets[o.Name] = o
		case "cert-manager.io/v1 Certificate":
			var o certificate
			strict(t, doc, &o)
			d.certificates = append(d.certificates, o)
		case "networking.k8s.io/v1 NetworkPolicy":
			var o networkingv1.NetworkPolicy
			strict(t, doc, &o)
			d.netpols = append(d.netpols, o)
		case "monitoring.coreos.com/v1 ServiceMonitor":
			var o serviceMonitor
			strict(t, doc, &o)
			d.monitors = append(d.monitors, o)
		default:
			t.Fatalf("unexpected document %s %s", tm.APIVersion, tm.Kind)
		}
	}
	return d
}

// workload is a Deployment or StatefulSet seen through what others
// reference: its pod template.
type workload struct {
	kind, name string
	selector   map[string]string
	pod        corev1.PodTemplateSpec
}

func (d *decoded) workloads() []workload {
	var ws []workload
	for _, n := range slices.Sorted(maps.Keys(d.statefulSets)) {
		s := d.statefulSets[n]
		ws = append(ws, workload{"StatefulSet", n, s.Spec.Selector.MatchLabels, s.Spec.Template})
	}
	for _, n := range slices.Sorted(maps.Keys(d.deployments)) {
		s := d.deployments[n]
		ws = append(ws, workload{"Deployment", n, s.Spec.Selector.MatchLabels, s.Spec.Template})
	}
	return ws
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// selected returns the one workload whose pods sel selects.
func (d *decoded) selected(t *testing.T, what string, sel map[string]string) workload {
	t.Helper()
	var found []workload
	for _, w := range d.workloads() {
		if subset(sel, w.pod.Labels) {
			found = append(found, w)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: selector %v selects %d workloads, want exactly 1", what, sel, len(found))
	}
	return found[0]
}

func hasPort(ports []corev1.ContainerPort, p intstr.IntOrString) bool {
	for _, cp := range ports {
		if p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
			return true
		}
	}
	return false
}

func podPorts(pod corev1.PodTemplateSpec) []corev1.ContainerPort {
	var ps []corev1.ContainerPort
	for _, c := range pod.Spec.Containers {
		ps = append(ps, c.Ports...)
	}
	return ps
}

var standardLabels = []string{
	"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
	"app.kubernetes.io/part-of", "app.kubernetes.io/managed-by",
}

func checkLabels(t *testing.T, what string, labels map[string]string) {
	t.Helper()
	for _, l := range standardLabels {
		if labels[l] == "" {
			t.Errorf("%s: label %s missing", what, l)
		}
	}
	if labels["app.kubernetes.io/managed-by"] != "metro" {
		t.Errorf("%s: managed-by = %q", what, labels["app.kubernetes.io/managed-by"])
	}
}

// checkCrossReferences holds the rendering to what the cluster would
// otherwise only reveal at run time.
func checkCrossReferences(t *testing.T, c *config.Config, ns string, d *decoded) {
	t.Helper()
	metas := func() map[string]metav1.ObjectMeta {
		m := map[string]metav1.ObjectMeta{}
		for n, o := range d.configMaps {
			m["ConfigMap/"+n] = o.ObjectMeta
		}
		for n, o := range d.services {
			m["Service/"+n] = o.ObjectMeta
		}
		for n, o := range d.statefulSets {
			m["StatefulSet/"+n] = o.ObjectMeta
		}
		for n, o := range d.deployments {
			m["Deployment/"+n] = o.ObjectMeta
		}
		for _, o := range d.pdbs {
			m["PodDisruptionBudget/"+o.Name] = o.ObjectMeta
		}
		for _, o := range d.hpas {
			m["HorizontalPodAutoscaler/"+o.Name] = o.ObjectMeta
		}
		for _, o := range d.ingresses {
			m["Ingress/"+o.Name] = o.ObjectMeta
		}
		for _, o := range d.monitors {
			m["ServiceMonitor/"+o.Name] = o.ObjectMeta
		}
		return m
	}()
	for what, m := range metas {
		checkLabels(t, what, m.Labels)
		if m.Namespace != ns {
			t.Errorf("%s: namespace %q, want %q", what, m.Namespace, ns)
		}
		if m.Labels["app.kubernetes.io/part-of"] != c.Name || m.Labels["app.kubernetes.io/instance"] != c.Name {
			t.Errorf("%s: part-of/instance not the project %q: %v", what, c.Name, m.Labels)
		}
	}
	if ns != "" && (len(d.namespaces) != 1 || d.namespaces[0].Name != ns) {
		t.Errorf("namespace %q: documents %v", ns, d.namespaces)
	}

	longest := c.Gateway.Timeout.Std()
	for _, r := range c.Gateway.Routes {
		longest = max(longest, r.Timeout.Std())
	}
	for _, w := range d.workloads() {
		what := w.kind + "/" + w.name
		if !subset(w.selector, w.pod.Labels) {
			t.Errorf("%s: selector %v does not match its pod labels %v", what, w.selector, w.pod.Labels)
		}
		checkLabels(t, what+" pods", w.pod.Labels)
		ps := w.pod.Spec
		if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot ||
			ps.SecurityContext.SeccompProfile == nil || ps.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod security context is not restricted: %+v", what, ps.SecurityContext)
		}
		if ps.TerminationGracePeriodSeconds == nil {
			t.Errorf("%s: no terminationGracePeriodSeconds", what)
		} else if w.kind == "Deployment" && float64(*ps.TerminationGracePeriodSeconds) <= longest.Seconds() {
			t.Errorf("%s: terminationGracePeriodSeconds %d not above the longest route timeout %v", what, *ps.TerminationGracePeriodSeconds, longest)
		}
		if len(ps.Containers) == 0 {
			t.Errorf("%s: no containers", what)
		}
		for _, ct := range ps.Containers {
			cw := what + " container " + ct.Name
			r := ct.Resources
			if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
				t.Errorf("%s: resources incomplete: %+v", cw, r)
			}
			sc := ct.SecurityContext
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
				sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
				sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: security context is not restricted: %+v", cw, sc)
			}
			for name, p := range map[string]*corev1.Probe{"readiness": ct.ReadinessProbe, "liveness": ct.LivenessProbe, "startup": ct.StartupProbe} {
				if p == nil || p.HTTPGet == nil {
					t.Errorf("%s: no %s probe over HTTP", cw, name)
					continue
				}
				if !hasPort(ct.Ports, p.HTTPGet.Port) {
					t.Errorf("%s: %s probe port %s is not a container port", cw, name, p.HTTPGet.Port.String())
				}
			}
			if ct.Image == "" {
				t.Errorf("%s: no image", cw)
			}
		}
		for _, v := range ps.Volumes {
			if v.ConfigMap != nil {
				if _, ok := d.configMaps[v.ConfigMap.Name]; !ok {
					t.Errorf("%s: volume %s names ConfigMap %s, which is not emitted", what, v.Name, v.ConfigMap.Name)
				}
			}
		}
		for _, ct := range ps.Containers {
			for _, m := range ct.VolumeMounts {
				if !slices.ContainsFunc(ps.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) {
					t.Errorf("%s: mount %s has no volume", what, m.Name)
				}
			}
		}
	}
	for n, s := range d.services {
		w := d.selected(t, "Service/"+n, s.Spec.Selector)
		for _, p := range s.Spec.Ports {
			if !hasPort(podPorts(w.pod), p.TargetPort) {
				t.Errorf("Service/%s: targetPort %s is not a port of %s/%s", n, p.TargetPort.String(), w.kind, w.name)
			}
		}
	}
	for _, p := range d.pdbs {
		d.selected(t, "PodDisruptionBudget/"+p.Name, p.Spec.Selector.MatchLabels)
	}
	for _, h := range d.hpas {
		ref := h.Spec.ScaleTargetRef
		dep, ok := d.deployments[ref.Name]
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || !ok {
			t.Errorf("HorizontalPodAutoscaler/%s: target %v is not an emitted Deployment", h.Name, ref)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || *h.Spec.MinReplicas >= h.Spec.MaxReplicas {
			t.Errorf("HorizontalPodAutoscaler/%s: min %v max %d", h.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		if ok && dep.Spec.Replicas != nil {
			t.Errorf("Deployment/%s: sets replicas although an autoscaler owns them", dep.Name)
		}
	}
	for _, ing := range d.ingresses {
		for _, r := range ing.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				svc, ok := d.services[p.Backend.Service.Name]
				if !ok || !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == p.Backend.Service.Port.Name }) {
					t.Errorf("Ingress/%s: backend %+v is not a port of an emitted Service", ing.Name, p.Backend.Service)
				}
			}
		}
	}
	for _, m := range d.monitors {
		var hits int
		for _, s := range d.services {
			if subset(m.Spec.Selector.MatchLabels, s.Labels) {
				hits++
				for _, e := range m.Spec.Endpoints {
					if !slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == e.Port }) {
						t.Errorf("ServiceMonitor/%s: port %s not on Service/%s", m.Name, e.Port, s.Name)
					}
				}
			}
		}
		if hits != 1 {
			t.Errorf("ServiceMonitor/%s selects %d Services, want 1", m.Name, hits)
		}
	}
	for n, s := range d.statefulSets {
		h, ok := d.services[s.Spec.ServiceName]
		if !ok || h.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("StatefulSet/%s: serviceName %s is not an emitted headless Service", n, s.Spec.ServiceName)
		}
	}
}

// checkNATS parses nats.conf with nats-server's own parser and holds its
// routes to the StatefulSet: one per pod, by the pod's stable DNS name.
func checkNATS(t *testing.T, d *decoded) {
	t.Helper()
	for n, s := range d.statefulSets {
		var cm string
		for _, v := range s.Spec.Template.Spec.Volumes {
			if v.ConfigMap != nil {
				cm = v.ConfigMap.Name
			}
		}
		conf := d.configMaps[cm].Data["nats.conf"]
		p := filepath.Join(t.TempDir(), "nats.conf")
		if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Setenv("SERVER_NAME", n+"-0")
		checkConfig(t, p)
		opts, err := server.ProcessConfigFile(p)
		if err != nil {
			t.Fatalf("nats.conf does not parse: %v\n%s", err, conf)
		}
		replicas := int(*s.Spec.Replicas)
		if replicas == 1 {
			replicas = 0 // a lone server has no cluster block
		}
		if len(opts.Routes) != replicas {
			t.Errorf("nats.conf has %d routes for %d replicas", len(opts.Routes), replicas)
		}
		for i, r := range opts.Routes {
			if want := fmt.Sprintf("%s-%d.%s:6222", n, i, s.Spec.ServiceName); r.Host != want {
				t.Errorf("route %d is %s, want %s", i, r.Host, want)
			}
		}
		if opts.ServerName != n+"-0" || opts.HTTPPort != 8222 || opts.Port != 4222 || opts.LameDuckDuration == 0 {
			t.Errorf("nats.conf: server_name %q http %d port %d lame duck %v", opts.ServerName, opts.HTTPPort, opts.Port, opts.LameDuckDuration)
		}
		ct := s.Spec.Template.Spec.Containers[0]
		if ct.Lifecycle == nil || ct.Lifecycle.PreStop == nil || ct.Lifecycle.PreStop.Exec == nil ||
			!strings.Contains(strings.Join(ct.Lifecycle.PreStop.Exec.Command, " "), "ldm="+opts.PidFile) {
			t.Errorf("StatefulSet/%s: preStop does not enter lame-duck mode through %s: %+v", n, opts.PidFile, ct.Lifecycle)
		}
		aa := s.Spec.Template.Spec.Affinity
		if aa == nil || aa.PodAntiAffinity == nil || len(aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
			t.Errorf("StatefulSet/%s: no pod anti-affinity", n)
		}
	}
}

// gatewayConfig loads the metro.yaml of the gateway's ConfigMap the way
// `metro gateway --config` will.
func gatewayConfig(t *testing.T, d *decoded) *config.Config {
	t.Helper()
	var dep appsv1.Deployment
	for _, x := range d.deployments {
		if x.Labels["app.kubernetes.io/component"] == "gateway" {
			dep = x
		}
	}
	args := dep.Spec.Template.Spec.Containers[0].Args
	if !slices.Equal(args, []string{"gateway", "--config", "/etc/metro/metro.yaml"}) {
		t.Fatalf("gateway args %q", args)
	}
	var cm string
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			cm = v.ConfigMap.Name
		}
	}
	src := d.configMaps[cm].Data["metro.yaml"]
	gc, err := config.Parse("metro.yaml", t.TempDir(), []byte(src))
	if err != nil {
		t.Fatalf("the gateway's metro.yaml does not load: %v\n%s", err, src)
	}
	return gc
}

func load(t *testing.T, dir string) *config.Config {
	t.Helper()
	c, err := config.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTrustedProxies: the deployed gateway trusts what metro.yaml says,
// else what its Ingress needs, else only loopback (its own default).
func TestTrustedProxies(t *testing.T) {
	tests := []struct {
		name    string
		gateway []string
		ingress *config.Ingress
		want    []string
	}{
		{"no ingress", nil, nil, nil},
		{"ingress, default pod ranges", nil, &config.Ingress{Host: "h"}, ingressTrust},
		{"ingress with its pod CIDR", nil, &config.Ingress{Host: "h", TrustedProxies: []string{"10.244.0.0/16"}}, []string{"10.244.0.0/16"}},
		{"gateway setting wins", []string{"192.0.2.0/24"}, &config.Ingress{Host: "h", TrustedProxies: []string{"10.244.0.0/16"}}, []string{"192.0.2.0/24"}},
		{"gateway trusting none", []string{}, &config.Ingress{Host: "h"}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			c.Gateway.TrustedProxies = tc.gateway
			c.Deploy.Ingress = tc.ingress
			got := trustedProxies(&c)
			if !slices.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("trusted proxies %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		dir    string
		opts   Options
		golden string
		ns     string
		check  func(t *testing.T, c *config.Config, d *decoded)
	}{
		{"testdata/shop", Options{}, "testdata/shop.golden.yaml", "shop", func(t *testing.T, c *config.Config, d *decoded) {
			if len(d.statefulSets) != 1 || *d.statefulSets["shop-nats"].Spec.Replicas != 3 {
				t.Errorf("want a 3-server NATS StatefulSet, got %v", slices.Collect(maps.Keys(d.statefulSets)))
			}
			gc := gatewayConfig(t, d)
			if gc.NATS.URL != "nats://shop-nats:4222" || gc.Gateway.Timeout != c.Gateway.Timeout ||
				gc.Gateway.MaxBody != c.Gateway.MaxBody || len(gc.Gateway.Routes) != 1 {
				t.Errorf("gateway metro.yaml differs from the project's: %+v", gc.Gateway)
			}
			// Behind the Ingress, the controller's pod (any pod network
			// address) is a trusted proxy; an internet address is not.
			for addr, want := range map[string]bool{"10.244.3.17": true, "100.64.1.2": true, "fd12::7": true, "203.0.113.7": false} {
				a := netip.MustParseAddr(addr)
				trusted := slices.ContainsFunc(gc.Gateway.TrustedProxies, func(c string) bool { return netip.MustParsePrefix(c).Contains(a) })
				if trusted != want {
					t.Errorf("deployed gateway trusts %s: %v, want %v (trusted_proxies %q)", addr, trusted, want, gc.Gateway.TrustedProxies)
				}
			}
			if img := d.deployments["shop-gateway"].Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/acme/shop-gateway:latest" {
				t.Errorf("gateway image %q", img)
			}
			catalog := d.deployments["shop-catalog"].Spec.Template.Spec.Containers[0]
			env := map[string]string{}
			for _, e := range catalog.Env {
				if _, dup := env[e.Name]; dup {
					t.Errorf("catalog: env %s set twice", e.Name)
				}
				env[e.Name] = e.Value
			}
			// The cluster's NATS URL wins over the one metro.yaml sets for metro dev.
			if env["NATS_URL"] != gc.NATS.URL || env["METRO_HEALTH_ADDR"] != ":8081" || env["LOG_LEVEL"] != "debug" {
				t.Errorf("catalog env %v", env)
			}
			// deploy.otel.endpoint reaches the gateway and every worker.
			for name, dep := range d.deployments {
				var got string
				for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
					if e.Name == "OTEL_EXPORTER_OTLP_ENDPOINT" {
						got = e.Value
					}
				}
				if got != c.Deploy.OTel.Endpoint {
					t.Errorf("Deployment/%s: OTEL_EXPORTER_OTLP_ENDPOINT = %q, want %q", name, got, c.Deploy.OTel.Endpoint)
				}
			}
			if catalog.Image != "ghcr.io/acme/shop-catalog:latest" {
				t.Errorf("catalog image %q", catalog.Image)
			}
			if r := *d.deployments["shop-catalog"].Spec.Replicas; r != 1 {
				t.Errorf("catalog replicas %d", r)
			}
			orders := d.deployments["shop-orders"].Spec.Template.Spec.Containers[0]
			if orders.Resources.Requests.Cpu().String() != "200m" || orders.Resources.Limits.Memory().String() != "512Mi" ||
				orders.Resources.Requests.Memory().String() != "32Mi" {
				t.Errorf("orders resources not merged over deploy.workers.resources: %+v", orders.Resources)
			}
			if len(d.hpas) != 2 || len(d.pdbs) != 3 || len(d.ingresses) != 1 || len(d.monitors) != 0 {
				t.Errorf("hpas %d pdbs %d ingresses %d monitors %d", len(d.hpas), len(d.pdbs), len(d.ingresses), len(d.monitors))
			}
			ing := d.ingresses[0]
			if ing.Spec.Rules[0].Host != "shop.example.com" || ing.Spec.TLS[0].SecretName != "shop-tls" || *ing.Spec.IngressClassName != "nginx" {
				t.Errorf("ingress %+v", ing.Spec)
			}
			gwPod := d.deployments["shop-gateway"].Spec.Template
			if gwPod.Annotations["prometheus.io/scrape"] != "true" || gwPod.Annotations["prometheus.io/port"] != "9090" {
				t.Errorf("gateway pods lack scrape annotations: %v", gwPod.Annotations)
			}
			if ls := gwPod.Spec.Containers[0].Lifecycle; ls == nil || ls.PreStop == nil || ls.PreStop.Sleep == nil || ls.PreStop.Sleep.Seconds < 1 {
				t.Errorf("gateway has no preStop delay: %+v", ls)
			}
			checkNATS(t, d)
		}},
		{"../../examples/shop", Options{}, "testdata/examples-shop.golden.yaml", "shop", func(t *testing.T, c *config.Config, d *decoded) {
			checkNATS(t, d)
			checkCredentials(t, c, d)
			checkNetworkPolicy(t, d)
			checkLockedCluster(t, c, d)
			gc := gatewayConfig(t, d)
			if gc.NATS.URL != "nats://shop-nats:4222" || gc.Gateway.Timeout != c.Gateway.Timeout || gc.Gateway.MaxBody != c.Gateway.MaxBody {
				t.Errorf("gateway metro.yaml differs from the project's: %+v %+v", gc.NATS, gc.Gateway)
			}
			if len(d.deployments) != 1+len(c.Workers) {
				t.Errorf("%d Deployments for the gateway and %d workers", len(d.deployments), len(c.Workers))
			}
		}},
		{"testdata/external", Options{Tag: "v9"}, "testdata/external.golden.yaml", "", func(t *testing.T, c *config.Config, d *decoded) {
			if len(d.statefulSets) != 0 || len(d.namespaces) != 0 {
				t.Errorf("an external NATS needs no StatefulSet and no namespace: %d, %d", len(d.statefulSets), len(d.namespaces))
			}
			gc := gatewayConfig(t, d)
			if gc.NATS.URL != c.NATS.URL || gc.Gateway.Prefix != "api" || gc.Gateway.Listen != ":8000" ||
				!slices.Equal(gc.Gateway.TrustedProxies, []string{"10.0.0.0/8"}) || gc.Gateway.MaxBody != 8<<20 {
				t.Errorf("gateway metro.yaml: %+v %+v", gc.NATS, gc.Gateway)
			}
			search := d.deployments["search-search"].Spec.Template.Spec.Containers[0]
			env := map[string]string{}
			for _, e := range search.Env {
				env[e.Name] = e.Value
			}
			if env["NATS_URL"] != c.NATS.URL || env["METRO_PREFIX"] != "api" || env["GREETING"] != c.Workers["search"].Env["GREETING"] {
				t.Errorf("search env %q", env)
			}
			if search.Image != "registry.example.com:5000/team/search:v9" {
				t.Errorf("search image %q", search.Image)
			}
			if img := d.deployments["search-gateway"].Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(img, "/team/gw@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") {
				t.Errorf("gateway image %q: a digest must be kept as is", img)
			}
			if len(d.hpas) != 0 || len(d.monitors) != 1 || len(d.ingresses) != 0 {
				t.Errorf("hpas %d monitors %d ingresses %d", len(d.hpas), len(d.monitors), len(d.ingresses))
			}
			if r := d.deployments["search-gateway"].Spec.Replicas; r == nil || *r != 2 {
				t.Errorf("gateway replicas %v", r)
			}
			if _, ok := d.deployments["search-gateway"].Spec.Template.Annotations["prometheus.io/scrape"]; ok {
				t.Error("scrape annotations beside a ServiceMonitor would scrape twice")
			}
		}},
	}
	keys, err := natsauth.LoadKeys(testKeys)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			c := load(t, tt.dir)
			tt.opts.Keys = keys
			ms, err := Render(c, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				// Fixed seeds keep the goldens byte-identical, as
				// KeysFile does for a project.
				if err := natsauth.SaveKeys(testKeys, keys); err != nil {
					t.Fatal(err)
				}
			}
			got := YAML(ms)
			if *update {
				if err := os.WriteFile(tt.golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(tt.golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run go test -update and review the diff)", tt.golden)
			}
			d := decodeAll(t, got)
			checkCrossReferences(t, c, tt.ns, d)
			tt.check(t, c, d)
		})
	}
}
