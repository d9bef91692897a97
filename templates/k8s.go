package templates

import "embed"

// K8s holds the Kubernetes manifests of `metro deploy`, one file per
// component; internal/deploy fills them from metro.yaml.
//
//go:embed k8s
var K8s embed.FS
