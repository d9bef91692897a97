package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/metropolis-dev/metro/internal/config"
	"github.com/metropolis-dev/metro/internal/metrotest"
	"github.com/metropolis-dev/metro/internal/natsauth"
)

const valid = "name: shop\nworkers:\n  catalog: {path: ./catalog}\ndeploy:\n  registry: ghcr.io/acme\n"

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		opts Options
		want []string
	}{
		{"missing image", "name: shop\nworkers:\n  catalog:\n    path: ./catalog\n",
			Options{}, []string{"metro.yaml:3: workers.catalog.image: no image: set deploy.registry", "deploy.gateway.image: no image"}},
		{"no name", "workers:\n  catalog: {path: ./catalog}\ndeploy: {registry: r}\n", Options{}, []string{"name: is required to deploy"}},
		{"name not a label", "name: My_Shop\ndeploy: {registry: r}\n", Options{}, []string{`metro.yaml:1: name: "My_Shop" is not a DNS-1123 label`}},
		{"name too long", "name: " + strings.Repeat("a", 55) + "\ndeploy: {registry: r}\n", Options{}, []string{"metro.yaml:1: name: ", "too long"}},
		{"nats statefulset name over 52", "name: " + strings.Repeat("a", 49) + "\ndeploy: {registry: r}\n", Options{},
			[]string{"metro.yaml:1: name: the StatefulSet name " + strings.Repeat("a", 49) + "-nats is too long: 54 characters, Kubernetes allows 52", "kubernetes#64023"}},
		{"service name must start with a letter", "name: 1shop\ndeploy: {registry: r}\n", Options{},
			[]string{"metro.yaml:1: name: the Service name 1shop-", "start with an alphabetic character"}},
		{"worker deployment name over 63", "name: " + strings.Repeat("s", 30) + "\nworkers:\n  " + strings.Repeat("w", 40) + ": {path: ./catalog}\ndeploy: {registry: r}\n", Options{},
			[]string{"metro.yaml:3: workers." + strings.Repeat("w", 40) + ": the Deployment name " + strings.Repeat("s", 30) + "-" + strings.Repeat("w", 40) + " is too long: 71 characters, Kubernetes allows 63"}},
		{"reserved worker name", "name: shop\nworkers:\n  gateway: {path: ./catalog}\ndeploy: {registry: r}\n", Options{}, []string{"metro.yaml:3: workers.gateway: the worker name \"gateway\" is metro's own"}},
		{"zero gateway replicas", valid + "  gateway: {replicas: 0}\n", Options{}, []string{"metro.yaml:6: deploy.gateway.replicas: 0"}},
		{"zero nats replicas", valid + "  nats: {replicas: 0}\n", Options{}, []string{"metro.yaml:6: deploy.nats.replicas: 0"}},
		{"bad quantity", valid + "  workers:\n    resources:\n      requests: {cpu: lots}\n", Options{}, []string{`metro.yaml:8: deploy.workers.resources.requests.cpu: "lots" is not a positive Kubernetes quantity`}},
		{"bad worker quantity", "name: shop\nworkers:\n  catalog:\n    path: ./catalog\n    resources: {limits: {memory: -1Gi}}\ndeploy: {registry: r}\n", Options{}, []string{`metro.yaml:5: workers.catalog.resources.limits.memory: "-1Gi"`}},
		{"random port", valid + "gateway:\n  listen: \":0\"\n", Options{}, []string{`metro.yaml:7: gateway.listen: ":0": deploying needs a fixed port`}},
		{"no admin", valid + "gateway:\n  admin: \"\"\n", Options{}, []string{"metro.yaml:7: gateway.admin: "}},
		{"same ports", valid + "gateway:\n  listen: \":9090\"\n", Options{}, []string{"gateway.admin: uses the same port as gateway.listen"}},
		{"bad env name", "name: shop\nworkers:\n  catalog:\n    path: ./catalog\n    env: {\"1BAD\": x}\ndeploy: {registry: r}\n", Options{}, []string{"metro.yaml:5: workers.catalog.env.1BAD: not a valid environment variable name"}},
		{"bad tag in file", valid + "  tag: \"v1/2\"\n", Options{}, []string{`metro.yaml:6: deploy.tag: "v1/2" is not an image tag`}},
		{"bad --tag", valid, Options{Tag: "-x"}, []string{`--tag "-x" is not an image tag`}},
		{"bad --namespace", valid, Options{Namespace: "Prod"}, []string{`--namespace "Prod" is not a DNS-1123 label`}},
		{"mocked worker", "name: shop\nworkers:\n  catalog: {path: ./catalog}\n  stock:\n    mock: session.ndjson\ndeploy: {registry: r}\n", Options{},
			[]string{"metro.yaml:5: workers.stock.mock: session.ndjson is a recording that metro dev answers from; to deploy, replace mock: with the real worker's path: or run:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "catalog"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "session.ndjson"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			// Some mistakes are the loader's to find, others Render's:
			// either way the user gets file, line and key.
			c, err := config.Parse("metro.yaml", dir, []byte(tt.src))
			if err == nil {
				_, err = Render(c, tt.opts)
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// A worker with negative replicas, or a name that is no DNS label, is
// refused by config.Load already, with the key.
func TestConfigErrorsReachDeploy(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := "name: shop\nworkers:\n  Cat_1: {path: ./c}\n  ok: {path: ./c, replicas: -1}\ndeploy: {registry: r}\n"
	if err := os.WriteFile(filepath.Join(dir, "metro.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), RunOptions{Dir: dir, EmitYAML: true, Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}})
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *config.Error", err)
	}
	for _, w := range []string{`workers.Cat_1: worker name "Cat_1" is not a DNS-1123 label`, "workers.ok.replicas: -1 is negative"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func TestDeterministic(t *testing.T) {
	c := load(t, "testdata/shop")
	keys := natsauth.Keys{} // made once, as Run keeps them in KeysFile
	first, err := Render(c, Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		// Reload too: map order differs between loads as well as renders.
		again, err := Render(load(t, "testdata/shop"), Options{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(YAML(first), YAML(again)) {
			t.Fatal("two renderings of the same metro.yaml differ")
		}
	}
}

func TestOptionsOverride(t *testing.T) {
	c := load(t, "testdata/shop")
	ms, err := Render(c, Options{Namespace: "staging", Tag: "abc123"})
	if err != nil {
		t.Fatal(err)
	}
	d := decodeAll(t, YAML(ms))
	checkCrossReferences(t, c, "staging", d)
	for n, dep := range d.deployments {
		if img := dep.Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(img, ":abc123") {
			t.Errorf("Deployment/%s image %q does not carry --tag", n, img)
		}
	}
}

func TestNATSSizes(t *testing.T) {
	for _, n := range []int{1, 2, 5} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			dir := t.TempDir()
			src := fmt.Sprintf("name: shop\ndeploy:\n  registry: r\n  nats:\n    replicas: %d\n    image: nats:2.12.1-alpine\n    resources: {requests: {cpu: \"1\"}}\n", n)
			c, err := config.Parse("metro.yaml", dir, []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			ms, err := Render(c, Options{})
			if err != nil {
				t.Fatal(err)
			}
			d := decodeAll(t, YAML(ms))
			checkCrossReferences(t, c, "", d)
			checkNATS(t, d)
			sts := d.statefulSets["shop-nats"]
			if *sts.Spec.Replicas != int32(n) || sts.Spec.Template.Spec.Containers[0].Image != "nats:2.12.1-alpine" ||
				sts.Spec.Template.Spec.Containers[0].Resources.Requests.Cpu().String() != "1" {
				t.Errorf("StatefulSet does not follow deploy.nats: %+v", sts.Spec)
			}
		})
	}
}

// copyShop copies testdata/shop to a project directory of its own.
func copyShop(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/shop")); err != nil {
		t.Fatal(err)
	}
	// Keys an earlier run left in the source tree are not the test's.
	if err := os.RemoveAll(filepath.Join(dir, ".metro")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRunKeepsKeys: the first run makes the credentials and keeps them
// (owner-only) in the project; every later run emits the same bytes.
func TestRunKeepsKeys(t *testing.T) {
	project := copyShop(t)
	run := func() []byte {
		var stdout, stderr bytes.Buffer
		if err := Run(context.Background(), RunOptions{Dir: project, EmitYAML: true, Stdout: &stdout, Stderr: &stderr}); err != nil {
			t.Fatal(err)
		}
		return stdout.Bytes()
	}
	first := run()
	fi, err := os.Stat(filepath.Join(project, KeysFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", KeysFile, fi.Mode().Perm())
	}
	if !bytes.Equal(first, run()) {
		t.Error("a second run emits other bytes")
	}
	if !bytes.Contains(first, []byte("kind: Secret")) {
		t.Error("no Secret emitted")
	}
}

func TestRunOutputs(t *testing.T) {
	want, err := os.ReadFile("testdata/shop.golden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The project, with the golden's keys where Run keeps them.
	project := copyShop(t)
	keys, err := natsauth.LoadKeys(testKeys)
	if err != nil {
		t.Fatal(err)
	}
	if err := natsauth.SaveKeys(filepath.Join(project, KeysFile), keys); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, out string) (string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		err := Run(context.Background(), RunOptions{Dir: filepath.Join(project, "workers", "catalog"), EmitYAML: true, Output: out, Stdout: &stdout, Stderr: &stderr})
		if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String()
	}
	t.Run("stdout", func(t *testing.T) {
		for _, o := range []string{"", "-"} {
			if got, _ := run(t, o); got != string(want) {
				t.Errorf("-o %q: stdout is not the golden stream", o)
			}
		}
	})
	t.Run("file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "all.yaml")
		run(t, p)
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want) {
			t.Errorf("file differs from the golden stream (%v)", err)
		}
	})
	t.Run("dir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "k8s") + "/"
		_, msg := run(t, dir)
		if !strings.Contains(msg, "kustomization.yaml") {
			t.Errorf("stderr %q", msg)
		}
		k, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		// The files, in kustomization order, are the stream again.
		var files []string
		for _, l := range strings.Split(string(k), "\n") {
			if f, ok := strings.CutPrefix(l, "  - "); ok {
				files = append(files, f)
			}
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != len(files)+1 {
			t.Errorf("%d files in the directory, %d in kustomization.yaml", len(entries), len(files))
		}
		var docs [][]byte
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			docs = append(docs, b)
		}
		if got := bytes.Join(docs, []byte("---\n")); !bytes.Equal(got, want) {
			t.Error("the directory's files joined are not the golden stream")
		}
		// kubectl's kustomize must build the directory.
		t.Run("kubectl kustomize", func(t *testing.T) {
			kubectl := metrotest.NeedTool(t, "kubectl", "that kubectl kustomize builds the directory")
			out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl kustomize: %v\n%s", err, out)
			}
			if n := len(decodeAll(t, bytes.TrimPrefix(out, []byte("---\n"))).deployments); n != 3 {
				t.Errorf("kustomize build has %d Deployments, want 3", n)
			}
		})
		for _, f := range []string{"shop-gateway-deployment.yaml", "shop-nats-statefulset.yaml", "shop-orders-horizontalpodautoscaler.yaml", "shop-namespace.yaml"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("missing %s", f)
			}
		}
	})
}
