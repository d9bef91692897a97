package scaffold

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var goEntry = []kv{{"path", scalar("./workers/billing")}}

var nodeEntry = []kv{
	{"run", scalar("node index.js")},
	{"dir", scalar("./workers/billing")},
	{"watch", flowList("**/*.js")},
}

// yamlCases are metro.yaml files as users write them. keeps says whether
// every line of the input must survive unchanged, in order.
var yamlCases = []struct {
	name  string
	in    string
	keeps bool
}{
	{"block", `# shop: the demo project
name: shop   # the name

gateway:
  listen: ":8080"

workers:
  # the catalogue, read-mostly
  catalog:
    path: ./workers/catalog   # Go
    env: {LOG_LEVEL: debug}

  orders:
    path: ./workers/orders
    # more orders config later

# deploy settings
deploy:
  registry: ghcr.io/acme
`, true},
	{"block-last", `name: shop
workers:
  catalog:
    path: ./workers/catalog
    watch:
      - "**/*.go"
      - "*.tmpl"
# trailing comment
`, true},
	{"four-spaces", `name: shop
gateway:
    listen: ":8080"
workers:
    catalog:
        path: ./workers/catalog
nats:
    port: 4222
`, true},
	{"scalar-entry-first", `workers:
  catalog: {path: ./workers/catalog}
  orders:
    path: ./workers/orders
`, true},
	{"null", `name: shop
workers:
nats:
  port: 4222
`, true},
	{"null-eof-no-newline", "name: shop\nworkers:", true},
	{"tilde-comment", `name: shop
workers: ~   # none yet
`, false},
	{"empty-flow", `name: shop
workers: {}
deploy: {registry: r}
`, false},
	{"flow", `name: shop
workers: {catalog: {path: ./workers/catalog}}
`, false},
	{"absent", `# only a name
name: shop
`, true},
	{"absent-no-newline", `name: shop`, true},
	{"empty", ``, true},
	{"only-comments", "# nothing yet\n", true},
	{"crlf", "name: shop\r\nworkers:\r\n  catalog:\r\n    path: ./workers/catalog\r\n", true},
	{"block-scalar", `workers:
  catalog:
    path: ./workers/catalog
    env:
      NOTE: |
        # not a comment

deploy: {}
`, true},
	{"anchors", `defaults: &d
  replicas: 2
workers:
  catalog:
    <<: *d
    path: ./workers/catalog
`, true},
}

func TestAddWorkerYAML(t *testing.T) {
	for _, tt := range yamlCases {
		for _, lang := range []struct {
			name  string
			entry []kv
		}{{"go", goEntry}, {"node", nodeEntry}} {
			t.Run(tt.name+"/"+lang.name, func(t *testing.T) {
				out, err := addWorker([]byte(tt.in), "billing", lang.entry)
				if err != nil {
					t.Fatalf("addWorker: %v", err)
				}
				want, err := expected([]byte(tt.in), "billing", lang.entry)
				if err != nil {
					t.Fatal(err)
				}
				if !sameYAML(out, want) {
					t.Errorf("result does not decode to the old document plus the worker:\n%s", out)
				}
				if tt.keeps {
					if missing := notKept(tt.in, string(out)); missing != "" {
						t.Errorf("line %q of the input is gone or moved:\n%s", missing, out)
					}
				}
				golden(t, "yamledit/"+tt.name+"-"+lang.name+".golden", out)
			})
		}
	}
}

// notKept returns the first line of in that is not, in order, a line of
// out.
func notKept(in, out string) string {
	ol := strings.Split(out, "\n")
	j := 0
	for _, l := range strings.Split(in, "\n") {
		for j < len(ol) && ol[j] != l {
			j++
		}
		if j == len(ol) {
			return l
		}
		j++
	}
	return ""
}

func TestAddWorkerYAMLRefuses(t *testing.T) {
	tests := []struct {
		name, in string
		is       error  // errors.Is, when set
		msg      string // a part of the message
	}{
		{"duplicate", "workers:\n  billing:\n    path: ./x\n", ErrExists, "line 2"},
		{"workers-list", "workers:\n  - billing\n", nil, "line 2: workers must be a mapping"},
		{"workers-string", "workers: billing\n", nil, "workers must be a mapping"},
		{"top-list", "- a\n- b\n", nil, "top level must be a mapping"},
		{"syntax", "name: [shop\n", nil, "parsing metro.yaml"},
		{"two-docs", "name: a\n---\nname: b\n", nil, "more than one YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := addWorker([]byte(tt.in), "billing", goEntry)
			if err == nil {
				t.Fatalf("addWorker succeeded:\n%s", out)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

// FuzzAddWorker: whatever the input, addWorker either refuses it or
// returns a file that reads as the input plus exactly the new worker.
func FuzzAddWorker(f *testing.F) {
	for _, tt := range yamlCases {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := addWorker([]byte(in), "billing", nodeEntry)
		if err != nil {
			return
		}
		want, err := expected([]byte(in), "billing", nodeEntry)
		if err != nil {
			t.Fatalf("addWorker accepted what expected cannot read: %v", err)
		}
		if !sameYAML(out, want) {
			t.Fatalf("input %q became %q", in, out)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(out, &doc); err != nil {
			t.Fatal(err)
		}
	})
}
