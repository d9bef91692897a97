// Package deploy renders a project's metro.yaml as Kubernetes manifests (a
// NATS cluster, the gateway, one Deployment per worker) and applies them
// with kubectl. It hides the manifests' shape: the templates under
// templates/k8s, the names and labels that tie the objects together, and
// the checks that make a bad config fail here rather than in the cluster.
package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/natsauth"
	"github.com/metropolis-dev/metro/templates"
)

// Options override metro.yaml for one run (flags of metro deploy).
type Options struct {
	Namespace string // deploy.namespace
	Tag       string // deploy.tag
	// Keys are the identities' nkey seeds by natsauth ID; missing ones
	// are made (Run keeps them in KeysFile).
	Keys natsauth.Keys
	// UserSecrets references Secrets the user manages, one per identity
	// by the names metro would give them, instead of emitting them.
	UserSecrets bool
}

// Manifest is one Kubernetes object, rendered.
type Manifest struct {
	Kind string
	Name string
	Body []byte // one YAML document, ending in a newline, without "---"
}

// File is the manifest's file name in a directory of manifests:
// "<name>-<kind>.yaml", unique because names are unique per kind.
func (m Manifest) File() string {
	return m.Name + "-" + strings.ToLower(m.Kind) + ".yaml"
}

// The fixed ports of what metro deploy runs. NATS keeps its well-known
// ports; workers serve probes on 8081 (METRO_HEALTH_ADDR).
const (
	natsClientPort   = 4222
	natsClusterPort  = 6222
	natsMonitorPort  = 8222
	workerHealthPort = 8081
	// preStopSeconds is how long a terminating gateway keeps serving
	// while endpoints and Ingress controllers catch up.
	preStopSeconds = 5
	// graceMargin covers shutdown work after the last request.
	graceMargin = 5
)

// Render checks c for what a deployment needs beyond config.Validate and
// renders its manifests, in apply order. The result depends only on c and
// opts: no timestamps, sorted maps, so it is byte-identical across runs.
func Render(c *config.Config, opts Options) ([]Manifest, error) {
	d, err := newData(c, opts)
	if err != nil {
		return nil, err
	}
	t, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	if d.NATS.Enabled {
		var b bytes.Buffer
		if err := t.ExecuteTemplate(&b, "nats.conf", unit{D: d}); err != nil {
			return nil, fmt.Errorf("rendering nats.conf: %w", err)
		}
		d.NATS.Conf = b.String()
		d.NATS.ConfHash = hash(d.NATS.Conf)
	}
	var out []Manifest
	emit := func(tmpl, kind string, u unit) error {
		var b bytes.Buffer
		if err := t.ExecuteTemplate(&b, tmpl, u); err != nil {
			return fmt.Errorf("rendering %s %s: %w", kind, u.Meta.Name, err)
		}
		body := bytes.TrimSpace(b.Bytes())
		out = append(out, Manifest{Kind: kind, Name: u.Meta.Name, Body: append(body, '\n')})
		return nil
	}
	var errs []error
	blamed := map[string]bool{} // one name error per key is enough to act on
	add := func(tmpl, kind string, u unit) {
		if err := checkName(kind, u.Meta.Name); err != nil {
			key := nameKey(kind, u)
			if !blamed[key] {
				blamed[key] = true
				errs = append(errs, c.Errorf(key, "%v", err))
			}
			return
		}
		errs = append(errs, emit(tmpl, kind, u))
	}

	if d.Namespace != "" {
		labels := []kv{{"app.kubernetes.io/managed-by", "metro"}, {"app.kubernetes.io/part-of", d.Project}}
		add("namespace", "Namespace", unit{Meta: meta{Name: d.Namespace, Labels: labels}, D: d})
	}
	for _, sec := range d.Auth.Secrets {
		u := d.unit(sec.Name, sec.Owner, "nats-credentials", nil)
		u.Secret = sec
		add("nats-secret", "Secret", u)
	}
	if d.Auth.Permissions != "" {
		add("nats-permissions", "ConfigMap", d.unit(d.Auth.Permissions, "nats", "nats", nil))
	}
	if d.NATS.Enabled {
		n := d.NATS
		if d.Auth.TLS != nil {
			add("nats-certificate", "Certificate", d.unit(d.Auth.TLS.Certificate, "nats", "nats", nil))
		}
		add("nats-networkpolicy", "NetworkPolicy", d.unit(d.Auth.NetworkPolicy, "nats", "nats", nil))
		add("nats-configmap", "ConfigMap", d.unit(n.ConfigMap, "nats", "nats", nil))
		add("nats-headless-service", "Service", d.unit(n.Headless, "nats", "nats", nil))
		add("nats-service", "Service", d.unit(n.Service, "nats", "nats", nil))
		add("nats-statefulset", "StatefulSet", d.unit(n.Name, "nats", "nats", nil))
		add("pdb", "PodDisruptionBudget", d.unit(n.Name, "nats", "nats", nil))
	}
	g := d.Gateway
	add("gateway-configmap", "ConfigMap", d.unit(g.ConfigMap, "gateway", "gateway", nil))
	add("gateway-service", "Service", d.unit(g.Service, "gateway", "gateway", nil))
	add("gateway-deployment", "Deployment", d.unit(g.Name, "gateway", "gateway", nil))
	add("pdb", "PodDisruptionBudget", d.unit(g.Name, "gateway", "gateway", nil))
	if g.HPA {
		u := d.unit(g.Name, "gateway", "gateway", nil)
		u.Replicas, u.MaxReplicas = g.Replicas, g.MaxReplicas
		add("hpa", "HorizontalPodAutoscaler", u)
	}
	if d.Ingress != nil {
		add("gateway-ingress", "Ingress", d.unit(g.Name, "gateway", "gateway", nil))
	}
	if d.Monitor {
		add("gateway-servicemonitor", "ServiceMonitor", d.unit(g.Name, "gateway", "gateway", nil))
	}
	for _, w := range d.Workers {
		u := d.unit(w.Deployment, w.Name, "worker", w)
		add("worker-deployment", "Deployment", u)
		if w.PDB {
			add("pdb", "PodDisruptionBudget", u)
		}
		if w.HPA {
			u.Replicas, u.MaxReplicas = w.Replicas, w.MaxReplicas
			add("hpa", "HorizontalPodAutoscaler", u)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// kv is one label or environment variable; slices of them keep order.
type kv struct{ K, V string }

// meta names one object and the pods it is about.
type meta struct {
	Name      string
	Namespace string
	Labels    []kv // on the object and its pods
	Selector  []kv // the subset that selects the pods
}

// unit is what one template executes on.
type unit struct {
	Meta        meta
	D           *data
	W           *worker
	Replicas    int // for hpa
	MaxReplicas int
	Secret      secretData // for nats-secret
}

type data struct {
	Project   string
	Namespace string
	NATS      natsData
	Gateway   gatewayData
	Workers   []*worker
	Ingress   *config.Ingress
	Monitor   bool
	Auth      authData

	WorkerGraceSeconds int
	WorkerHealthPort   int
}

type natsData struct {
	Enabled                              bool
	Name, Headless, Service, ConfigMap   string
	Image                                string
	Replicas                             int
	Routes                               []string
	ClientPort, ClusterPort, MonitorPort int
	MaxPayload                           int64
	Conf, ConfHash                       string
	Resources                            config.Resources
	MemLimit                             string
}

type gatewayData struct {
	Name, Service, ConfigMap string
	Image                    string
	Replicas, MaxReplicas    int
	HPA                      bool
	HTTPPort, AdminPort      int
	ConfigYAML, ConfigHash   string
	GraceSeconds             int
	PreStopSeconds           int
	ReadTimeoutSeconds       int
	MaxBody                  int64
	Resources                config.Resources
	MemLimit                 string
	// JWKS is a JWKS file's content for the ConfigMap, "" for none.
	JWKS    string
	OTelEnv []kv // deploy.otel's variables
}

type worker struct {
	Name                  string // as in metro.yaml
	Deployment            string // NAME-WORKER
	Image                 string
	Replicas, MaxReplicas int
	HPA, PDB              bool
	Env                   []kv
	Resources             config.Resources
	Secret                string // its NATS credentials
}

func (d *data) labels(component, name string) []kv {
	return []kv{
		{"app.kubernetes.io/component", component},
		{"app.kubernetes.io/instance", d.Project},
		{"app.kubernetes.io/managed-by", "metro"},
		{"app.kubernetes.io/name", name},
		{"app.kubernetes.io/part-of", d.Project},
	}
}

// unit names an object of the pods labelled name/component: name is "nats",
// "gateway" or a worker's name, which are distinct (reserved), so each
// selector picks exactly one workload's pods.
func (d *data) unit(objName, name, component string, w *worker) unit {
	return unit{
		Meta: meta{
			Name:      objName,
			Namespace: d.Namespace,
			Labels:    d.labels(component, name),
			Selector: []kv{
				{"app.kubernetes.io/instance", d.Project},
				{"app.kubernetes.io/name", name},
			},
		},
		D: d,
		W: w,
	}
}

// newData checks c for deployment and works out every value the templates
// need, so that the templates only place them.
func newData(c *config.Config, opts Options) (*data, error) {
	var errs []error
	fail := func(key, format string, args ...any) { errs = append(errs, c.Errorf(key, format, args...)) }

	dep := c.Deploy
	if opts.Namespace != "" {
		if !config.IsDNSLabel(opts.Namespace) {
			return nil, fmt.Errorf("--namespace %q is not a DNS-1123 label", opts.Namespace)
		}
		dep.Namespace = opts.Namespace
	}
	if opts.Tag != "" {
		if !validTag(opts.Tag) {
			return nil, fmt.Errorf("--tag %q is not an image tag (letters, digits, '_', '.', '-'; at most 128)", opts.Tag)
		}
		dep.Tag = opts.Tag
	} else if !validTag(dep.Tag) {
		fail("deploy.tag", "%q is not an image tag (letters, digits, '_', '.', '-'; at most 128)", dep.Tag)
	}

	d := &data{
		Project:          c.Name,
		Namespace:        dep.Namespace,
		Ingress:          dep.Ingress,
		Monitor:          dep.Monitor,
		WorkerHealthPort: workerHealthPort,
	}
	switch {
	case c.Name == "":
		fail("name", "is required to deploy: it names the images and every object")
	case !config.IsDNSLabel(c.Name):
		fail("name", "%q is not a DNS-1123 label (lower-case letters, digits and '-'), as Kubernetes names need", c.Name)
	}
	image := func(key, override, component string) string {
		switch {
		case override != "":
			if hasTagOrDigest(override) {
				return override
			}
			return override + ":" + dep.Tag
		case dep.Registry == "":
			fail(key, "no image: set deploy.registry (images are REGISTRY/%s-%s:TAG) or %s", c.Name, component, key)
			return ""
		}
		return strings.TrimSuffix(dep.Registry, "/") + "/" + c.Name + "-" + component + ":" + dep.Tag
	}

	longest := c.Gateway.Timeout.Std()
	for _, r := range c.Gateway.Routes {
		longest = max(longest, r.Timeout.Std())
	}
	drain := int((longest + time.Second - 1) / time.Second)
	d.WorkerGraceSeconds = drain + graceMargin

	// NATS
	natsURL := c.NATS.URL
	d.NATS.Enabled = natsURL == ""
	if d.NATS.Enabled {
		n := &d.NATS
		n.Name = c.Name + "-nats"
		n.Headless = n.Name + "-headless"
		n.Service = n.Name
		n.ConfigMap = n.Name + "-config"
		n.Image = dep.NATS.Image
		n.Replicas = dep.NATS.Replicas
		n.ClientPort, n.ClusterPort, n.MonitorPort = natsClientPort, natsClusterPort, natsMonitorPort
		if n.Image == "" {
			fail("deploy.nats.image", "is required")
		}
		// Short DNS names resolve inside the namespace, whichever it is.
		for i := range n.Replicas {
			n.Routes = append(n.Routes, fmt.Sprintf("nats://%s-%d.%s:%d", n.Name, i, n.Headless, natsClusterPort))
		}
		// NATS's default max_payload is 1MB; a body the gateway holds
		// whole must fit in one message, with room for the headers. A
		// larger one streams to the workers (PROTOCOL.md section 9).
		n.MaxPayload = max(1<<20, c.Gateway.HeldBody().Int64()+64<<10)
		n.Resources = dep.NATS.Resources
		checkResources("deploy.nats.resources", n.Resources, fail)
		n.MemLimit = memLimit(n.Resources)
		natsURL = fmt.Sprintf("nats://%s:%d", n.Service, natsClientPort)
	}

	// Gateway
	g := &d.Gateway
	g.Name = c.Name + "-gateway"
	g.Service, g.ConfigMap = g.Name, g.Name+"-config"
	g.Image = image("deploy.gateway.image", dep.Gateway.Image, "gateway")
	g.Replicas, g.MaxReplicas = dep.Gateway.Replicas, dep.Gateway.MaxReplicas
	g.HPA = g.MaxReplicas > g.Replicas
	g.HTTPPort = port("gateway.listen", c.Gateway.Listen, fail)
	g.AdminPort = port("gateway.admin", c.Gateway.Admin, fail)
	if g.HTTPPort != 0 && g.HTTPPort == g.AdminPort {
		fail("gateway.admin", "uses the same port as gateway.listen")
	}
	g.PreStopSeconds = preStopSeconds
	g.GraceSeconds = preStopSeconds + drain + graceMargin
	g.ReadTimeoutSeconds = drain + graceMargin
	g.MaxBody = c.Gateway.MaxBody.Int64()
	g.Resources = dep.Gateway.Resources
	checkResources("deploy.gateway.resources", g.Resources, fail)
	g.MemLimit = memLimit(g.Resources)
	g.OTelEnv = otelEnv(c)
	checkResources("deploy.workers.resources", dep.Workers.Resources, fail)
	limits, err := gatewayLimits(c, g.Resources)
	if err != nil {
		errs = append(errs, err)
	}
	g.ConfigYAML, err = gatewayFile(c, natsURL, g.HTTPPort, g.AdminPort, limits)
	if err != nil {
		return nil, err
	}
	if p := jwksFile(c); p != "" {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, c.Errorf("gateway.auth.jwt.jwks", "%v", err)
		}
		g.JWKS = string(data)
	}
	g.ConfigHash = hash(g.ConfigYAML + g.JWKS)

	// Workers
	for _, name := range slices.Sorted(maps.Keys(c.Workers)) {
		cw := c.Workers[name]
		key := "workers." + name
		if config.IsReservedWorkerName(name) {
			fail(key, "the worker name %q is metro's own (reserved: %s); rename the worker", name, strings.Join(config.ReservedWorkerNames, ", "))
		}
		if cw.Mock != "" {
			// A stand-in answering from a recording is for metro dev;
			// deployed, the service would be missing or answer canned
			// replies in production, and neither should happen unnoticed.
			fail(key+".mock", "%s is a recording that metro dev answers from; to deploy, replace mock: with the real worker's path: or run: (or remove the worker)", cw.Mock)
			continue
		}
		w := &worker{
			Name:       name,
			Deployment: c.Name + "-" + name,
			Image:      image(key+".image", cw.Image, name),
			Replicas:   max(cw.Replicas, 1),
		}
		w.MaxReplicas = max(cw.MaxReplicas, w.Replicas)
		w.HPA = w.MaxReplicas > w.Replicas
		w.PDB = w.Replicas > 1 || w.HPA
		if cw.Resources != nil {
			checkResources(key+".resources", *cw.Resources, fail)
		}
		w.Resources = dep.Workers.Resources.Merge(cw.Resources)
		gomem := memLimit(w.Resources)
		// metro's variables come first and win: a NATS_URL in env is for
		// metro dev, and the cluster's is the one that works here.
		w.Env = []kv{{"NATS_URL", natsURL}, {"NATS_NKEY", credsMount + "/" + nkeyFile}, {"METRO_HEALTH_ADDR", ":" + strconv.Itoa(workerHealthPort)}}
		if c.Gateway.Prefix != "" {
			w.Env = append(w.Env, kv{"METRO_PREFIX", c.Gateway.Prefix})
		}
		if gomem != "" {
			w.Env = append(w.Env, kv{"GOMEMLIMIT", gomem})
		}
		w.Env = append(w.Env, otelEnv(c)...)
		set := map[string]bool{}
		for _, e := range w.Env {
			set[e.K] = true
		}
		for _, k := range slices.Sorted(maps.Keys(cw.Env)) {
			if errs := validation.IsEnvVarName(k); len(errs) > 0 {
				fail(key+".env."+k, "not a valid environment variable name in Kubernetes: %s", strings.Join(errs, "; "))
			}
			if !set[k] {
				w.Env = append(w.Env, kv{k, cw.Env[k]})
			}
		}
		d.Workers = append(d.Workers, w)
	}
	tls := newTLS(c, d, fail)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if d.Auth, err = newAuth(c, d, opts); err != nil {
		return nil, err
	}
	d.Auth.TLS = tls
	if tls != nil {
		for _, w := range d.Workers {
			w.Env = append(w.Env[:2], append([]kv{{"NATS_CA", tls.ClientCA}}, w.Env[2:]...)...)
		}
	}
	return d, nil
}

// port returns the port of a listen address; a pod needs a fixed one.
func port(key, addr string, fail func(string, string, ...any)) int {
	_, p, err := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 65535 {
		fail(key, "%q: deploying needs a fixed port (e.g. \":8080\")", addr)
		return 0
	}
	return n
}

// checkResources reports every quantity of r that does not parse.
func checkResources(key string, r config.Resources, fail func(string, string, ...any)) {
	for _, f := range []struct{ sub, v string }{
		{"requests.cpu", r.Requests.CPU}, {"requests.memory", r.Requests.Memory},
		{"limits.cpu", r.Limits.CPU}, {"limits.memory", r.Limits.Memory},
	} {
		if f.v == "" {
			continue
		}
		if q, err := resource.ParseQuantity(f.v); err != nil || q.Sign() <= 0 {
			fail(key+"."+f.sub, "%q is not a positive Kubernetes quantity (e.g. 100m, 0.5, 64Mi)", f.v)
		}
	}
}

// memLimit is the GOMEMLIMIT for r's memory limit: 90% of it, leaving
// room for what the Go heap does not count ("" when there is none).
func memLimit(r config.Resources) string {
	q, err := resource.ParseQuantity(r.Limits.Memory)
	if err != nil || q.Sign() <= 0 {
		return ""
	}
	return strconv.FormatInt(q.Value()/10*9, 10)
}

// gatewayFile is the metro.yaml the gateway pods read: the gateway block
// and the cluster's NATS URL, without workers (whose paths exist only in
// the source tree). Listen addresses keep only their port: in a pod the
// gateway must listen on every interface.
func gatewayFile(c *config.Config, natsURL string, httpPort, adminPort int, limits memoryLimits) (string, error) {
	type route struct {
		Match     string            `yaml:"match"`
		Timeout   config.Duration   `yaml:"timeout,omitempty"`
		Auth      string            `yaml:"auth,omitempty"`
		RateLimit *config.RateLimit `yaml:"rate_limit,omitempty"`
	}
	type gateway struct {
		Listen         string            `yaml:"listen"`
		Admin          string            `yaml:"admin"`
		Prefix         string            `yaml:"prefix,omitempty"`
		Timeout        config.Duration   `yaml:"timeout"`
		MaxBody        config.ByteSize   `yaml:"max_body"`
		TrustedProxies []string          `yaml:"trusted_proxies,omitempty"`
		Routes         []route           `yaml:"routes,omitempty"`
		RouteTTL       config.Duration   `yaml:"route_ttl"`
		MaxInFlight    int               `yaml:"max_in_flight"`
		MaxBodyMemory  config.ByteSize   `yaml:"max_body_memory"`
		Auth           *config.Auth      `yaml:"auth,omitempty"`
		CORS           *config.CORS      `yaml:"cors,omitempty"`
		RateLimit      *config.RateLimit `yaml:"rate_limit,omitempty"`
	}
	type file struct {
		Name    string            `yaml:"name"`
		Gateway gateway           `yaml:"gateway"`
		NATS    map[string]string `yaml:"nats"`
	}
	f := file{
		Name: c.Name,
		Gateway: gateway{
			Listen:         ":" + strconv.Itoa(httpPort),
			Admin:          ":" + strconv.Itoa(adminPort),
			Prefix:         c.Gateway.Prefix,
			Timeout:        c.Gateway.Timeout,
			MaxBody:        c.Gateway.MaxBody,
			TrustedProxies: trustedProxies(c),
			RouteTTL:       c.Gateway.RouteTTL,
			MaxInFlight:    limits.maxInFlight,
			MaxBodyMemory:  limits.maxBodyMemory,
			CORS:           c.Gateway.CORS,
			RateLimit:      c.Gateway.RateLimit,
		},
		NATS: map[string]string{"url": natsURL},
	}
	if c.Gateway.HasJWT() {
		jwt := *c.Gateway.Auth.JWT
		if jwksFile(c) != "" {
			// The file travels in the same ConfigMap, mounted beside
			// metro.yaml, so the relative name finds it.
			jwt.JWKS = jwksKey
		}
		f.Gateway.Auth = &config.Auth{JWT: &jwt}
	}
	for _, r := range c.Gateway.Routes {
		f.Gateway.Routes = append(f.Gateway.Routes, route{Match: r.Match, Timeout: r.Timeout, Auth: r.Auth, RateLimit: r.RateLimit})
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return "", fmt.Errorf("writing the gateway's metro.yaml: %w", err)
	}
	return "# metro.yaml for the gateway pods, written by metro deploy.\n" + b.String(), nil
}

// ingressTrust is whom the deployed gateway trusts for X-Forwarded-* behind
// an Ingress when neither gateway.trusted_proxies nor
// deploy.ingress.trusted_proxies says: the ranges pod networks are carved
// from (RFC 1918, the RFC 6598 shared space some CNIs use, IPv6 ULA). The
// gateway's Service is a ClusterIP, so only pods and nodes reach it at
// all; the Ingress controller is one of them and must be trusted, or every
// request would seem to come from the controller.
var ingressTrust = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"}

// trustedProxies is the trust the deployed gateway needs: the configured
// one when set, else its Ingress controller's, else none but loopback (the
// gateway's default).
func trustedProxies(c *config.Config) []string {
	switch {
	case c.Gateway.TrustedProxies != nil:
		return c.Gateway.TrustedProxies
	case c.Deploy.Ingress == nil:
		return nil
	case len(c.Deploy.Ingress.TrustedProxies) > 0:
		return c.Deploy.Ingress.TrustedProxies
	}
	return ingressTrust
}

// jwksKey is the gateway ConfigMap's key, and so the file name beside
// metro.yaml, of a JWKS given as a file.
const jwksKey = "jwks.json"

// jwksFile is the path of gateway.auth.jwt.jwks when it names a file
// rather than a URL (which the pods fetch themselves), else "".
func jwksFile(c *config.Config) string {
	if !c.Gateway.HasJWT() {
		return ""
	}
	src := c.Gateway.Auth.JWT.JWKS
	if strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://") {
		return ""
	}
	if !filepath.IsAbs(src) {
		src = filepath.Join(c.Dir, src)
	}
	return src
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// validTag follows the OCI distribution spec: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
func validTag(t string) bool {
	if t == "" || len(t) > 128 || t[0] == '.' || t[0] == '-' {
		return false
	}
	for _, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// hasTagOrDigest reports whether an image reference names its version
// ("repo:1.2", "repo@sha256:..."); a colon before the last slash is a
// registry port ("localhost:5000/x").
func hasTagOrDigest(ref string) bool {
	if strings.Contains(ref, "@") {
		return true
	}
	return strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":")
}

func parseTemplates() (*template.Template, error) {
	t := template.New("k8s")
	t.Funcs(template.FuncMap{
		"q": func(s string) string {
			b, _ := json.Marshal(s)
			return string(b)
		},
		"nindent": nindent,
		"dir":     path.Dir,
		"include": func(name string, v any) (string, error) {
			var b bytes.Buffer
			if err := t.ExecuteTemplate(&b, name, v); err != nil {
				return "", err
			}
			return strings.Trim(b.String(), "\n"), nil
		},
	})
	if _, err := t.ParseFS(templates.K8s, "k8s/*.tmpl"); err != nil {
		return nil, fmt.Errorf("parsing the Kubernetes templates: %w", err)
	}
	return t, nil
}

// nindent starts s on a new line and indents each of its non-empty lines
// by n spaces, so a multi-line piece nests at any depth.
func nindent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return "\n" + strings.Join(lines, "\n")
}

// otelEnv is the OpenTelemetry environment of every metro pod: where
// spans go, and the project as service.namespace, so a backend that holds
// several projects keeps their "gateway"s apart.
func otelEnv(c *config.Config) []kv {
	if c.Deploy.OTel.Endpoint == "" {
		return nil
	}
	return []kv{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", c.Deploy.OTel.Endpoint},
		{"OTEL_RESOURCE_ATTRIBUTES", "service.namespace=" + c.Name},
	}
}
