package deploy

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// nameRule is what Kubernetes accepts as the name of one kind of object.
type nameRule struct {
	max   int
	check func(string) []string
	why   string // the reason for a limit below the format's own
}

// statefulSetNameMax: every pod of a StatefulSet carries the label
// controller-revision-hash = NAME-HASH, and a label value has at most 63
// characters; with the 10-character hash and its dash, a longer name
// makes the controller fail to create pods (kubernetes#64023).
const statefulSetNameMax = 63 - 11

var nameRules = map[string]nameRule{
	"StatefulSet": {statefulSetNameMax, validation.IsDNS1123Label,
		"its pods carry NAME-HASH in the controller-revision-hash label, which must fit in 63 (kubernetes#64023)"},
	// A Deployment's name is a subdomain to the API server, but its name
	// reaches its pods' host names and labels, which are labels.
	"Deployment": {validation.DNS1123LabelMaxLength, validation.IsDNS1123Label, ""},
	// A Service's name is its DNS name: a label that starts with a letter.
	"Service":                 {validation.DNS1035LabelMaxLength, validation.IsDNS1035Label, ""},
	"Namespace":               {validation.DNS1123LabelMaxLength, validation.IsDNS1123Label, ""},
	"ConfigMap":               {validation.DNS1123SubdomainMaxLength, validation.IsDNS1123Subdomain, ""},
	"PodDisruptionBudget":     {validation.DNS1123SubdomainMaxLength, validation.IsDNS1123Subdomain, ""},
	"HorizontalPodAutoscaler": {validation.DNS1123SubdomainMaxLength, validation.IsDNS1123Subdomain, ""},
	"Ingress":                 {validation.DNS1123SubdomainMaxLength, validation.IsDNS1123Subdomain, ""},
	"ServiceMonitor":          {validation.DNS1123SubdomainMaxLength, validation.IsDNS1123Subdomain, ""},
	"Secret":                  {validation.DNS1123SubdomainMaxLength, validation.IsDNS1123Subdomain, ""},
	"NetworkPolicy":           {validation.DNS1123SubdomainMaxLength, validation.IsDNS1123Subdomain, ""},
	"Certificate":             {validation.DNS1123SubdomainMaxLength, validation.IsDNS1123Subdomain, ""},
}

// checkName reports why name cannot name an object of kind, or nil.
func checkName(kind, name string) error {
	r, ok := nameRules[kind]
	if !ok {
		return fmt.Errorf("no name rule for kind %s", kind) // a new template forgot its rule
	}
	if len(name) > r.max {
		why := ""
		if r.why != "" {
			why = ": " + r.why
		}
		return fmt.Errorf("the %s name %s is too long: %d characters, Kubernetes allows %d%s", kind, name, len(name), r.max, why)
	}
	if errs := r.check(name); len(errs) > 0 {
		return fmt.Errorf("the %s name %s is not valid: %s", kind, name, strings.Join(errs, "; "))
	}
	return nil
}

// nameKey is the metro.yaml key whose value a generated name comes from.
func nameKey(kind string, u unit) string {
	switch {
	case kind == "Namespace":
		return "deploy.namespace"
	case u.W != nil:
		return "workers." + u.W.Name
	}
	return "name"
}
