// Package config reads metro.yaml: it finds the file, fills defaults,
// applies METRO_* environment overrides and reports every mistake with the
// file, line and key it is about.
package config

import "time"

// FileName is the project file, found by searching upward like go.mod.
const FileName = "metro.yaml"

// Config is one project. Every default is in Default.
type Config struct {
	Name    string            `yaml:"name"`
	Gateway Gateway           `yaml:"gateway"`
	NATS    NATS              `yaml:"nats"`
	Workers map[string]Worker `yaml:"workers"`
	Deploy  Deploy            `yaml:"deploy"`

	// Path is the file the config was read from ("" when built in code);
	// Dir is its directory, against which worker paths are resolved.
	Path string `yaml:"-"`
	Dir  string `yaml:"-"`

	// lines maps each dotted key the file sets to its line, for messages.
	lines map[string]int
	// setBy maps each dotted key that a flag overrides to the flag.
	setBy map[string]string
}

// Gateway is the gateway block.
type Gateway struct {
	Listen         string        `yaml:"listen"`
	Admin          string        `yaml:"admin"`
	Prefix         string        `yaml:"prefix"`
	Timeout        Duration      `yaml:"timeout"`
	MaxBody        ByteSize      `yaml:"max_body"`
	TrustedProxies []string      `yaml:"trusted_proxies"`
	Routes         []RouteConfig `yaml:"routes"`
	// RouteTTL is how long a route outlives the last service announcing it.
	RouteTTL Duration `yaml:"route_ttl"`
	// MaxInFlight bounds the requests served at once, MaxBodyMemory the
	// request bodies held at once (0: no limit); see memory.go.
	MaxInFlight   int      `yaml:"max_in_flight"`
	MaxBodyMemory ByteSize `yaml:"max_body_memory"`
	// Edge policies (policy.go).
	Auth      *Auth      `yaml:"auth"`
	CORS      *CORS      `yaml:"cors"`
	RateLimit *RateLimit `yaml:"rate_limit"`
}

// MaxHeldBody is the most of one request body the gateway holds: a larger
// one streams to a worker that reads streamed bodies (PROTOCOL.md section
// 9), holding two parts, and to any other does not fit one NATS message
// (metro deploy sizes max_payload to HeldBody).
const MaxHeldBody = 8 << 20

// HeldBody is the most of one request body the gateway holds at once.
func (g Gateway) HeldBody() ByteSize { return min(g.MaxBody, MaxHeldBody) }

// BodyMemory is the budget for request bodies held at once (0: none): at
// least HeldBody, so that a body of the largest size allowed can be read,
// unless the user chose less (which Validate refuses).
func (g Gateway) BodyMemory() ByteSize {
	if g.MaxBodyMemory == 0 {
		return 0
	}
	return max(g.MaxBodyMemory, g.HeldBody())
}

// RouteConfig declares a route or overrides one announced by workers.
type RouteConfig struct {
	Match   string   `yaml:"match"`   // a ServeMux pattern, e.g. "POST /orders"
	Timeout Duration `yaml:"timeout"` // 0: the gateway default
	// Auth is required, optional or none; "" is required once
	// gateway.auth.jwt is set.
	Auth      string     `yaml:"auth"`
	RateLimit *RateLimit `yaml:"rate_limit"`
}

// NATS is the nats block.
type NATS struct {
	URL  string `yaml:"url"`  // empty: metro dev embeds a server
	Port int    `yaml:"port"` // the embedded server's port; 0 random
}

// Worker is one entry of the workers map.
type Worker struct {
	Path     string            `yaml:"path"` // a Go main package, built by metro dev
	Run      string            `yaml:"run"`  // any command, run in Dir
	Dir      string            `yaml:"dir"`
	Watch    []string          `yaml:"watch"`
	Env      map[string]string `yaml:"env"`
	Replicas int               `yaml:"replicas"`
	Image    string            `yaml:"image"` // deploy: overrides REGISTRY/NAME-WORKER:TAG
	// MaxReplicas, when above Replicas, gives the worker an autoscaler
	// (deploy); Resources overrides deploy.workers.resources field by field.
	MaxReplicas int        `yaml:"max_replicas"`
	Resources   *Resources `yaml:"resources"`
	// Routes are the patterns the worker serves, as it registers them;
	// declared, they are all it may subscribe to on a locked bus.
	Routes []string `yaml:"routes"`
	// Calls names the workers it may call; nil (absent) is every route,
	// empty is none.
	Calls []string `yaml:"calls"`
	// Line is where the worker is declared in the file, for messages.
	Line int `yaml:"-"`

	// Mock is a recording (metro tap --record) that metro dev answers
	// from, with metro mock, in place of the worker.
	Mock string `yaml:"mock"`
}

// Deploy is the deploy block.
type Deploy struct {
	Registry  string        `yaml:"registry"`
	Namespace string        `yaml:"namespace"`
	Tag       string        `yaml:"tag"`
	Ingress   *Ingress      `yaml:"ingress"`
	NATS      DeployNATS    `yaml:"nats"`
	Gateway   DeployGateway `yaml:"gateway"`
	Workers   DeployWorkers `yaml:"workers"`
	// Monitor emits a Prometheus Operator ServiceMonitor for the gateway
	// instead of prometheus.io/* scrape annotations.
	Monitor bool `yaml:"service_monitor"`
	// OTel says where the gateway and the workers send their spans.
	OTel DeployOTel `yaml:"otel"`
}

// DeployOTel is the OpenTelemetry collector of a deployment.
type DeployOTel struct {
	// Endpoint is the OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT),
	// e.g. http://otel-collector.observability:4318; empty: no spans.
	Endpoint string `yaml:"endpoint"`
}

// Resources are a container's requests and limits, in Kubernetes quantity
// syntax ("100m", "64Mi").
type Resources struct {
	Requests ResourceList `yaml:"requests"`
	Limits   ResourceList `yaml:"limits"`
}

// ResourceList is a CPU and memory quantity; empty means unset.
type ResourceList struct {
	CPU    string `yaml:"cpu"`
	Memory string `yaml:"memory"`
}

// Merge returns r with every field that o sets replaced by o's.
func (r Resources) Merge(o *Resources) Resources {
	if o == nil {
		return r
	}
	pick := func(a, b string) string {
		if b != "" {
			return b
		}
		return a
	}
	r.Requests.CPU = pick(r.Requests.CPU, o.Requests.CPU)
	r.Requests.Memory = pick(r.Requests.Memory, o.Requests.Memory)
	r.Limits.CPU = pick(r.Limits.CPU, o.Limits.CPU)
	r.Limits.Memory = pick(r.Limits.Memory, o.Limits.Memory)
	return r
}

// DeployWorkers holds what every worker Deployment shares.
type DeployWorkers struct {
	Resources Resources `yaml:"resources"`
}

// Ingress is the optional ingress of the gateway.
type Ingress struct {
	Host      string `yaml:"host"`
	TLSSecret string `yaml:"tls_secret"`
	Class     string `yaml:"class"`
	// TrustedProxies are the CIDRs the Ingress controller connects to the
	// gateway from (the cluster's pod network), written to the deployed
	// gateway's trusted_proxies unless gateway.trusted_proxies is set.
	// Empty: the private and shared address ranges that pod networks use.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// DeployNATS sizes the NATS cluster metro deploys when nats.url is empty.
type DeployNATS struct {
	Replicas  int       `yaml:"replicas"`
	Image     string    `yaml:"image"`
	Resources Resources `yaml:"resources"`
	// TLS, when set, encrypts client and cluster connections with a
	// certificate that cert-manager issues.
	TLS *DeployTLS `yaml:"tls"`
}

// DeployTLS names the cert-manager issuer of the NATS certificate.
type DeployTLS struct {
	Issuer string `yaml:"issuer"`
	Kind   string `yaml:"kind"` // Issuer (default) or ClusterIssuer
}

// DeployGateway sizes the gateway Deployment.
// An autoscaler is emitted when MaxReplicas is above Replicas.
type DeployGateway struct {
	Replicas    int       `yaml:"replicas"`
	MaxReplicas int       `yaml:"max_replicas"`
	Image       string    `yaml:"image"` // overrides REGISTRY/NAME-gateway:TAG
	Resources   Resources `yaml:"resources"`
}

// Default returns the built-in defaults: the one place they are written.
func Default() Config {
	return Config{
		Gateway: Gateway{
			Listen:   ":8080",
			Admin:    ":9090",
			Timeout:  Duration(30 * time.Second),
			MaxBody:  1 << 20,
			RouteTTL: Duration(10 * time.Minute),
			// Sized for the gateway's default memory limit: see memory.go.
			MaxInFlight:   DefaultMaxInFlight,
			MaxBodyMemory: DefaultMaxBodyMemory,
		},
		NATS: NATS{Port: 4222},
		Deploy: Deploy{
			NATS: DeployNATS{Replicas: 3, Image: "nats:2.12-alpine", Resources: Resources{
				Requests: ResourceList{CPU: "100m", Memory: "128Mi"},
				Limits:   ResourceList{Memory: "512Mi"},
			}},
			Gateway: DeployGateway{Replicas: 2, MaxReplicas: 10, Resources: Resources{
				Requests: ResourceList{CPU: "100m", Memory: "64Mi"},
				Limits:   ResourceList{Memory: "256Mi"},
			}},
			// No CPU limits by default: throttling a latency-sensitive
			// process hurts more than it protects; memory limits stay.
			Workers: DeployWorkers{Resources: Resources{
				Requests: ResourceList{CPU: "50m", Memory: "32Mi"},
				Limits:   ResourceList{Memory: "256Mi"},
			}},
			Tag: "latest",
		},
	}
}
