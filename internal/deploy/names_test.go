package deploy

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/metropolis-dev/metro/internal/config"
)

// TestGeneratedNamesFit renders projects whose names approach every
// limit and holds each object Render emits to what the cluster will do
// with its name, checked from the rendered YAML: a StatefulSet's pods get
// the label controller-revision-hash=NAME-<10 characters> (a label value:
// at most 63), a Service's name is a DNS-1035 label, a Deployment's name
// goes into its pods' names and labels (a DNS-1123 label). A project
// either renders names that all fit or is refused at the key to change.
func TestGeneratedNamesFit(t *testing.T) {
	var rendered, refused int
	for _, n := range []int{1, 30, 45, 47, 48, 49, 52, 54, 56, 63} {
		for _, wn := range []int{1, 10, 20, 40} {
			name := "p" + strings.Repeat("a", n-1)
			worker := "w" + strings.Repeat("b", wn-1)
			src := fmt.Sprintf("name: %s\nworkers:\n  %s: {path: ., replicas: 2, max_replicas: 4}\n"+
				"deploy:\n  registry: r\n  namespace: ns\n  service_monitor: true\n  ingress: {host: a.example.com}\n  gateway: {replicas: 2, max_replicas: 4}\n", name, worker)
			c, err := config.Parse("metro.yaml", t.TempDir(), []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			ms, err := Render(c, Options{})
			if err != nil {
				refused++
				if !strings.Contains(err.Error(), "metro.yaml:1: name: ") && !strings.Contains(err.Error(), "metro.yaml:3: workers."+worker+": ") {
					t.Errorf("name %d, worker %d: %v: names no key to change", n, wn, err)
				}
				continue
			}
			rendered++
			for _, m := range ms {
				var obj struct {
					metav1.TypeMeta
					Metadata metav1.ObjectMeta `json:"metadata"`
				}
				if err := sigsyaml.Unmarshal(m.Body, &obj); err != nil {
					t.Fatal(err)
				}
				if msgs := fits(obj.Kind, obj.Metadata.Name); len(msgs) > 0 {
					t.Errorf("name %d, worker %d: %s %s: %s", n, wn, obj.Kind, obj.Metadata.Name, strings.Join(msgs, "; "))
				}
			}
		}
	}
	if rendered == 0 || refused == 0 {
		t.Errorf("%d rendered, %d refused: the cases do not straddle the limits", rendered, refused)
	}
}

// fits is the cluster's view of a name, independent of nameRules.
func fits(kind, name string) []string {
	msgs := validation.IsDNS1123Subdomain(name)
	switch kind {
	case "StatefulSet":
		msgs = append(msgs, validation.IsValidLabelValue(name+"-"+strings.Repeat("x", 10))...)
		msgs = append(msgs, validation.IsDNS1123Label(name+"-99")...) // a pod's host name
	case "Service":
		msgs = append(msgs, validation.IsDNS1035Label(name)...)
	case "Deployment", "Namespace":
		msgs = append(msgs, validation.IsDNS1123Label(name)...)
	}
	return msgs
}
