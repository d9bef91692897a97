package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// project makes a temporary project directory holding the given worker
// directories and returns it.
func project(t *testing.T, dirs ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// architectureExample is the metro.yaml shown in ARCHITECTURE.md, verbatim.
const architectureExample = `name: shop
gateway:
  listen: ":8080"          # HTTP for clients
  admin: ":9090"           # /healthz /readyz /metrics
  prefix: ""               # subject prefix, e.g. "api"
  timeout: 30s             # default per-request timeout
  max_body: 1MiB
  trusted_proxies: []      # CIDRs whose X-Forwarded-* are kept; default loopback + private
  routes:                  # per-route overrides
    - match: "POST /orders"
      timeout: 5s
nats:
  url: ""                  # empty: metro dev embeds a server
  port: 4222               # the embedded server's port (0: random)
workers:
  catalog:
    path: ./workers/catalog    # a Go main package, built by metro dev
    replicas: 1
    env: {LOG_LEVEL: debug}
  notify:
    run: node index.js         # any command; dir is its working dir
    dir: ./workers/notify
    watch: ["**/*.js"]
deploy:
  registry: ghcr.io/acme
  namespace: shop
  ingress: {host: shop.example.com, tls_secret: shop-tls}
  nats: {replicas: 3}
`

func TestParseArchitectureExample(t *testing.T) {
	dir := project(t, "workers/catalog", "workers/notify")
	c, err := Parse("metro.yaml", dir, []byte(architectureExample))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Name = "shop"
	want.Path, want.Dir = "metro.yaml", dir
	want.Gateway.TrustedProxies = []string{}
	want.Gateway.Routes = []RouteConfig{{Match: "POST /orders", Timeout: Duration(5 * time.Second)}}
	want.Workers = map[string]Worker{
		"catalog": {Path: "./workers/catalog", Replicas: 1, Env: map[string]string{"LOG_LEVEL": "debug"}, Line: 16},
		"notify":  {Run: "node index.js", Dir: "./workers/notify", Watch: []string{"**/*.js"}, Replicas: 1, Line: 20},
	}
	want.Deploy.Registry = "ghcr.io/acme"
	want.Deploy.Namespace = "shop"
	want.Deploy.Ingress = &Ingress{Host: "shop.example.com", TLSSecret: "shop-tls"}
	want.lines = c.lines
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got\n%+v\nwant\n%+v", *c, want)
	}
	if got := c.Line("workers.catalog.env.LOG_LEVEL"); got != 19 {
		t.Errorf("line of workers.catalog.env.LOG_LEVEL = %d, want 19", got)
	}
	if got := c.Line("gateway.routes[0].timeout"); got != 11 {
		t.Errorf("line of gateway.routes[0].timeout = %d, want 11", got)
	}
}

func TestDefaults(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "name: x\n", "gateway:\nnats:\n"} {
		c, err := Parse("metro.yaml", t.TempDir(), []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		d := Default()
		if c.Gateway.Listen != ":8080" || c.Gateway.Admin != ":9090" ||
			c.Gateway.Timeout.Std() != 30*time.Second || c.Gateway.MaxBody.Int64() != 1<<20 ||
			c.NATS.Port != 4222 || c.Gateway.RouteTTL != d.Gateway.RouteTTL ||
			c.Deploy.NATS.Replicas != 3 || c.Deploy.Tag != "latest" {
			t.Errorf("%q: defaults not kept: %+v", src, c)
		}
	}
	if err := (&Config{}).Validate(); err == nil {
		t.Error("zero Config validates; want errors for its zero timeouts and listen address")
	}
	d := Default()
	if err := d.Validate(); err != nil {
		t.Errorf("Default() does not validate: %v", err)
	}
}

func TestReplicasDefaultToOne(t *testing.T) {
	dir := project(t, "a", "b")
	c, err := Parse("metro.yaml", dir, []byte("workers:\n  a: {path: ./a}\n  b: {path: ./b, replicas: 0}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers["a"].Replicas != 1 || c.Workers["b"].Replicas != 1 {
		t.Errorf("replicas = %d, %d; want 1, 1", c.Workers["a"].Replicas, c.Workers["b"].Replicas)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // each must appear in the error text
	}{
		{"unknown top-level key", "name: x\nworkerz: {}\n", []string{"metro.yaml:2: workerz: unknown key"}},
		{"unknown gateway key", "gateway:\n  listen: \":1\"\n  timout: 5s\n", []string{"metro.yaml:3: gateway.timout: unknown key"}},
		{"unknown worker key", "workers:\n  catalog:\n    path: ./catalog\n    replica: 2\n", []string{"metro.yaml:4: workers.catalog.replica: unknown key"}},
		{"unknown deploy key", "deploy:\n  ingress:\n    hots: a\n", []string{"metro.yaml:3: deploy.ingress.hots: unknown key"}},
		{"wrong type int", "workers:\n  catalog:\n    path: ./catalog\n    replicas: many\n", []string{`metro.yaml:4: workers.catalog.replicas: "many" is not an integer`}},
		{"quoted int", "nats:\n  port: \"4222\"\n", []string{`metro.yaml:2: nats.port: "4222" is not an integer`}},
		{"mapping for string", "name: {a: b}\n", []string{"metro.yaml:1: name: expected a string, got a mapping"}},
		{"scalar for mapping", "gateway: fast\n", []string{`metro.yaml:1: gateway: expected a mapping, got "fast"`}},
		{"scalar for list", "gateway:\n  trusted_proxies: 10.0.0.0/8\n", []string{"metro.yaml:2: gateway.trusted_proxies: expected a list"}},
		{"otel endpoint not a URL", "deploy:\n  otel:\n    endpoint: otel-collector:4318\n", []string{`metro.yaml:3: deploy.otel.endpoint: "otel-collector:4318" is not an http:// or https:// URL of an OTLP/HTTP collector (e.g. http://otel-collector:4318)`}},
		{"bad bool", "deploy:\n  service_monitor: yes\n", []string{`metro.yaml:2: deploy.service_monitor: "yes" is not true or false`}},
		{"bad duration", "gateway:\n  timeout: abc\n", []string{`metro.yaml:2: gateway.timeout: "abc" is not a duration`}},
		{"bare number duration", "gateway:\n  timeout: 30\n", []string{`metro.yaml:2: gateway.timeout: "30" is not a duration`}},
		{"zero timeout", "gateway:\n  timeout: 0s\n", []string{"metro.yaml:2: gateway.timeout: must be greater than 0"}},
		{"zero route timeout", "gateway:\n  routes:\n    - match: GET /a\n      timeout: 0s\n", []string{"metro.yaml:4: gateway.routes[0].timeout: must be greater than 0"}},
		{"bad size", "gateway:\n  max_body: 1 megabyte\n", []string{`metro.yaml:2: gateway.max_body: "1 megabyte" is not a size`}},
		{"negative size", "gateway:\n  max_body: -1\n", []string{`metro.yaml:2: gateway.max_body: "-1" is not a size`}},
		{"negative max_in_flight", "gateway:\n  max_in_flight: -5\n", []string{"metro.yaml:2: gateway.max_in_flight: -5 is negative (0: no limit)"}},
		{"max_in_flight not a number", "gateway:\n  max_in_flight: lots\n", []string{`metro.yaml:2: gateway.max_in_flight: "lots" is not an integer`}},
		{"bad max_body_memory", "gateway:\n  max_body_memory: plenty\n", []string{`metro.yaml:2: gateway.max_body_memory: "plenty" is not a size`}},
		{"max_body_memory below max_body", "gateway:\n  max_body: 2MiB\n  max_body_memory: 1MiB\n", []string{"metro.yaml:3: gateway.max_body_memory: 1MiB is less than the 2MiB of one body the gateway may hold"}},
		{"missing worker path", "workers:\n  catalog:\n    path: ./nowhere\n", []string{"metro.yaml:3: workers.catalog.path: ./nowhere does not exist"}},
		{"worker path is a file", "workers:\n  catalog:\n    path: ./file\n", []string{"metro.yaml:3: workers.catalog.path: ./file is not a directory"}},
		{"bad worker name", "workers:\n  Catalog_1:\n    path: ./catalog\n", []string{`metro.yaml:2: workers.Catalog_1: worker name "Catalog_1" is not a DNS-1123 label`}},
		{"both path and run", "workers:\n  catalog:\n    path: ./catalog\n    run: node x.js\n", []string{"metro.yaml:2: workers.catalog: has both path and run"}},
		{"neither path nor run", "workers:\n  catalog: {env: {A: b}}\n", []string{"metro.yaml:2: workers.catalog: needs path"}},
		{"negative replicas", "workers:\n  catalog:\n    path: ./catalog\n    replicas: -2\n", []string{"metro.yaml:4: workers.catalog.replicas: -2 is negative"}},
		{"max_replicas below replicas", "workers:\n  catalog:\n    path: ./catalog\n    replicas: 3\n    max_replicas: 2\n", []string{"metro.yaml:5: workers.catalog.max_replicas: 2 is less than replicas (3)"}},
		{"too many replicas", "workers:\n  catalog:\n    path: ./catalog\n    replicas: 100000\n", []string{"metro.yaml:4: workers.catalog.replicas: 100000 is more than 100"}},
		{"too many max_replicas", "workers:\n  catalog:\n    path: ./catalog\n    max_replicas: 100000\n", []string{"metro.yaml:4: workers.catalog.max_replicas: 100000 is more than 1000"}},
		{"too many gateway replicas", "deploy:\n  gateway: {replicas: 5000, max_replicas: 5000}\n", []string{"metro.yaml:2: deploy.gateway.replicas: 5000 is more than 100", "deploy.gateway.max_replicas: 5000 is more than 1000"}},
		{"too many nats replicas", "deploy:\n  nats:\n    replicas: 101\n", []string{"metro.yaml:3: deploy.nats.replicas: 101 is more than 100"}},
		{"reserved worker name gateway", "workers:\n  gateway:\n    path: ./catalog\n", []string{`metro.yaml:2: workers.gateway: the worker name "gateway" is metro's own`}},
		{"reserved worker name nats", "workers:\n  nats:\n    path: ./catalog\n", []string{`metro.yaml:2: workers.nats: the worker name "nats" is metro's own`}},
		{"reserved worker name dev", "workers:\n  dev:\n    path: ./catalog\n", []string{`metro.yaml:2: workers.dev: the worker name "dev" is metro's own`}},
		{"bad listen", "gateway:\n  listen: 8080\n", []string{`metro.yaml:2: gateway.listen: "8080" is not host:port`}},
		{"bad admin port", "gateway:\n  admin: \":99999\"\n", []string{`metro.yaml:2: gateway.admin: ":99999": port "99999" is not a number`}},
		{"prefix wildcard", "gateway:\n  prefix: api.*\n", []string{"metro.yaml:2: gateway.prefix: \"api.*\" contains a wildcard"}},
		{"prefix space", "gateway:\n  prefix: \"my api\"\n", []string{"metro.yaml:2: gateway.prefix: "}},
		{"prefix dollar", "gateway:\n  prefix: $SYS\n", []string{"metro.yaml:2: gateway.prefix: \"$SYS\" starts with $"}},
		{"prefix inbox", "gateway:\n  prefix: _inbox.x\n", []string{"starts with _INBOX"}},
		{"prefix empty token", "gateway:\n  prefix: a..b\n", []string{"has an empty token"}},
		{"bad cidr", "gateway:\n  trusted_proxies: [10.0.0.1]\n", []string{`metro.yaml:2: gateway.trusted_proxies[0]: "10.0.0.1" is not a CIDR`}},
		{"bad route pattern", "gateway:\n  routes:\n    - match: \"get /x\"\n", []string{"metro.yaml:3: gateway.routes[0].match: "}},
		{"route without match", "gateway:\n  routes:\n    - timeout: 1s\n", []string{"metro.yaml:3: gateway.routes[0].match: is required"}},
		{"duplicate key", "name: a\nname: b\n", []string{"metro.yaml:2: name: duplicate key"}},
		{"duplicate worker", "workers:\n  catalog: {path: ./catalog}\n  catalog: {path: ./catalog}\n", []string{"metro.yaml:3: workers.catalog: duplicate key"}},
		{"bad nats port", "nats:\n  port: 70000\n", []string{"metro.yaml:2: nats.port: 70000 is not a port"}},
		{"bad namespace", "deploy:\n  namespace: Shop\n", []string{`metro.yaml:2: deploy.namespace: "Shop" is not a DNS-1123 label`}},
		{"ingress without host", "deploy:\n  ingress: {tls_secret: x}\n", []string{"metro.yaml:2: deploy.ingress.host: is required"}},
		{"syntax error", "gateway:\n  listen: \":1\"\n bad\n", []string{"metro.yaml:2: did not find expected key"}},
		{"two documents", "name: a\n---\nname: b\n", []string{"metro.yaml:2: more than one YAML document"}},
		{"root not a mapping", "- a\n", []string{"metro.yaml:1: expected a mapping, got a list"}},
		{"several errors", "gateway:\n  timout: 5s\n  max_body: lots\n", []string{"metro.yaml:2: gateway.timout: unknown key", "metro.yaml:3: gateway.max_body:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := project(t, "catalog")
			if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Parse("metro.yaml", dir, []byte(tt.src))
			if err == nil {
				t.Fatalf("no error; want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *config.Error", err)
			}
			if ce.File != "metro.yaml" || ce.Line <= 0 {
				t.Errorf("first error %+v: want file metro.yaml and a line", ce)
			}
		})
	}
}

func TestLoadAndFind(t *testing.T) {
	root := project(t, "workers/catalog", "a/b/c")
	src := "name: shop\nworkers:\n  catalog: {path: ./workers/catalog}\n"
	if err := os.WriteFile(filepath.Join(root, FileName), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(root, "a", "b", "c")
	p, err := Find(deep)
	if err != nil {
		t.Fatal(err)
	}
	if p != filepath.Join(root, FileName) {
		t.Errorf("Find = %q, want %q", p, filepath.Join(root, FileName))
	}
	c, err := LoadDir(deep)
	if err != nil {
		t.Fatal(err)
	}
	if c.Dir != root || c.Path != filepath.Join(root, FileName) || c.Workers["catalog"].Line != 3 {
		t.Errorf("Dir %q Path %q Line %d", c.Dir, c.Path, c.Workers["catalog"].Line)
	}

	// A relative start keeps the answer relative, for short messages.
	t.Chdir(deep)
	if p, err := Find("."); err != nil || p != filepath.Join("..", "..", "..", FileName) {
		t.Errorf("Find(.) = %q, %v", p, err)
	}
	if c, err := LoadDir("."); err != nil || c.Dir != root {
		t.Errorf("LoadDir(.) = %v, %v", c, err)
	}

	empty := t.TempDir()
	if _, err := Find(empty); !errors.Is(err, ErrNotFound) {
		t.Errorf("Find(empty) = %v, want ErrNotFound", err)
	}
	if _, err := LoadDir(empty); !errors.Is(err, ErrNotFound) {
		t.Errorf("LoadDir(empty) = %v, want ErrNotFound", err)
	}
	if _, err := Load(filepath.Join(empty, FileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}
}

func TestApplyEnv(t *testing.T) {
	dir := t.TempDir()
	src := "gateway:\n  listen: \":7000\"\n  prefix: file\n  timeout: 10s\nnats:\n  url: nats://file:4222\n"
	tests := []struct {
		name    string
		env     map[string]string
		check   func(*Config) bool
		wantErr string
	}{
		{"file wins over default", nil, func(c *Config) bool {
			return c.Gateway.Listen == ":7000" && c.Gateway.Prefix == "file" && c.Gateway.Admin == ":9090" && c.NATS.URL == "nats://file:4222"
		}, ""},
		{"env wins over file", map[string]string{
			"METRO_LISTEN": "127.0.0.1:0", "METRO_ADMIN": ":9999", "METRO_PREFIX": "api.v1",
			"METRO_TIMEOUT": "2s", "METRO_MAX_BODY": "2MiB", "NATS_URL": "nats://env:4222",
		}, func(c *Config) bool {
			return c.Gateway.Listen == "127.0.0.1:0" && c.Gateway.Admin == ":9999" && c.Gateway.Prefix == "api.v1" &&
				c.Gateway.Timeout.Std() == 2*time.Second && c.Gateway.MaxBody == 2<<20 && c.NATS.URL == "nats://env:4222"
		}, ""},
		{"empty is unset", map[string]string{"METRO_LISTEN": ""}, func(c *Config) bool { return c.Gateway.Listen == ":7000" }, ""},
		{"bad timeout", map[string]string{"METRO_TIMEOUT": "abc"}, nil, `METRO_TIMEOUT: "abc" is not a duration`},
		{"zero timeout", map[string]string{"METRO_TIMEOUT": "0s"}, nil, "METRO_TIMEOUT: must be greater than 0"},
		{"bad size", map[string]string{"METRO_MAX_BODY": "big"}, nil, `METRO_MAX_BODY: "big" is not a size`},
		{"limits from env", map[string]string{"METRO_MAX_IN_FLIGHT": "100", "METRO_MAX_BODY_MEMORY": "8MiB"}, func(c *Config) bool {
			return c.Gateway.MaxInFlight == 100 && c.Gateway.MaxBodyMemory == 8<<20
		}, ""},
		{"no limits from env", map[string]string{"METRO_MAX_IN_FLIGHT": "0", "METRO_MAX_BODY_MEMORY": "0"}, func(c *Config) bool {
			return c.Gateway.MaxInFlight == 0 && c.Gateway.MaxBodyMemory == 0
		}, ""},
		{"bad max in flight", map[string]string{"METRO_MAX_IN_FLIGHT": "many"}, nil, `METRO_MAX_IN_FLIGHT: "many" is not an integer`},
		{"negative max in flight", map[string]string{"METRO_MAX_IN_FLIGHT": "-1"}, nil, "METRO_MAX_IN_FLIGHT: must not be negative (0: no limit)"},
		{"bad max body memory", map[string]string{"METRO_MAX_BODY_MEMORY": "1 ton"}, nil, `METRO_MAX_BODY_MEMORY: "1 ton" is not a size`},
		{"bad listen", map[string]string{"METRO_LISTEN": "nope"}, nil, `METRO_LISTEN: "nope" is not host:port`},
		{"bad prefix", map[string]string{"METRO_PREFIX": "a.>"}, nil, "METRO_PREFIX: "},
		{"trusted proxies", map[string]string{"METRO_TRUSTED_PROXIES": "10.244.0.0/16, 127.0.0.1/32"}, func(c *Config) bool {
			return slices.Equal(c.Gateway.TrustedProxies, []string{"10.244.0.0/16", "127.0.0.1/32"})
		}, ""},
		{"trusting none", map[string]string{"METRO_TRUSTED_PROXIES": "none"}, func(c *Config) bool {
			return c.Gateway.TrustedProxies != nil && len(c.Gateway.TrustedProxies) == 0
		}, ""},
		{"bad cidr", map[string]string{"METRO_TRUSTED_PROXIES": "10.0.0.0/8,nope"}, nil, `METRO_TRUSTED_PROXIES: "nope" is not a CIDR`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("metro.yaml", dir, []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			err = c.ApplyEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				var ce *Error
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &ce) || ce.Source == "" {
					t.Fatalf("err = %v, want *Error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

// TestSetByNamesTheFlag: a value a flag set is reported under the flag,
// not at the file's line for the key; values from the file keep their
// line.
func TestSetByNamesTheFlag(t *testing.T) {
	src := "gateway:\n  listen: \":7000\"\n  admin: \":7001\"\n  trusted_proxies: [10.0.0.0/8]\n"
	c, err := Parse("metro.yaml", t.TempDir(), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c.Gateway.Listen, c.Gateway.Admin, c.Gateway.TrustedProxies = "nope", "alsonope", []string{"10.0.0.0/8", "bad"}
	c.SetBy("gateway.listen", "--listen")
	c.SetBy("gateway.trusted_proxies", "--trusted-proxies")
	err = c.Validate()
	for _, want := range []string{
		`--listen: "nope" is not host:port`,
		`--trusted-proxies: "bad" is not a CIDR`,
		`metro.yaml:3: gateway.admin: "alsonope" is not host:port`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v\nwant it to contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "metro.yaml:2") || strings.Contains(err.Error(), "metro.yaml:4") {
		t.Errorf("a flag's value was reported at the file's line: %v", err)
	}
}

// FuzzLoad: any bytes either load or fail with *Error values, never panic,
// and an error that names a key carries the line it is on.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(architectureExample))
	f.Add([]byte("gateway:\n  timout: 5s\n"))
	f.Add([]byte("workers:\n  a: &x {path: ./a}\n  b: *x\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("gateway: {max_body: 1.5MB, routes: [{match: GET /x/{id}, timeout: 1s}]}\n"))
	f.Add([]byte("<<: {name: x}\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse("metro.yaml", dir, data)
		if err == nil {
			return
		}
		for _, e := range flatten(err) {
			var ce *Error
			if !errors.As(e, &ce) {
				t.Fatalf("error %T %q is not a *config.Error", e, e)
			}
			if ce.Key != "" && ce.Line <= 0 {
				t.Fatalf("error %q names key %q without a line", ce, ce.Key)
			}
		}
	})
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
