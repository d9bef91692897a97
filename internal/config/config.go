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
}

// RouteConfig declares a route or overrides one announced by workers.
type RouteConfig struct {
	Match   string   `yaml:"match"`   // a ServeMux pattern, e.g. "POST /orders"
	Timeout Duration `yaml:"timeout"` // 0: the gateway default
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
	Image    string            `yaml:"image"` // deploy: overrides REGISTRY/NAME
	// Line is where the worker is declared in the file, for messages.
	Line int `yaml:"-"`
}

// Deploy is the deploy block.
type Deploy struct {
	Registry  string        `yaml:"registry"`
	Namespace string        `yaml:"namespace"`
	Tag       string        `yaml:"tag"`
	Ingress   *Ingress      `yaml:"ingress"`
	NATS      DeployNATS    `yaml:"nats"`
	Gateway   DeployGateway `yaml:"gateway"`
	Monitor   bool          `yaml:"service_monitor"`
}

// Ingress is the optional ingress of the gateway.
type Ingress struct {
	Host      string `yaml:"host"`
	TLSSecret string `yaml:"tls_secret"`
	Class     string `yaml:"class"`
}

// DeployNATS sizes the NATS cluster metro deploys when nats.url is empty.
type DeployNATS struct {
	Replicas int    `yaml:"replicas"`
	Image    string `yaml:"image"`
}

// DeployGateway sizes the gateway Deployment.
type DeployGateway struct {
	Replicas    int `yaml:"replicas"`
	MaxReplicas int `yaml:"max_replicas"`
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
		},
		NATS: NATS{Port: 4222},
		Deploy: Deploy{
			NATS:    DeployNATS{Replicas: 3, Image: "nats:2.12-alpine"},
			Gateway: DeployGateway{Replicas: 2, MaxReplicas: 10},
			Tag:     "latest",
		},
	}
}
