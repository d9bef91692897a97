package config

import "slices"

// ReservedWorkerNames are names a worker may not take: metro's own parts
// already go by them. "gateway" and "nats" name the Kubernetes objects
// and images that metro deploy makes for the gateway and the NATS
// cluster (PROJECT-gateway, PROJECT-nats); "gateway" and "dev" are the
// prefixes of metro dev's own lines in its output.
var ReservedWorkerNames = []string{"dev", "gateway", "nats"}

// IsReservedWorkerName reports whether name is one of ReservedWorkerNames.
func IsReservedWorkerName(name string) bool { return slices.Contains(ReservedWorkerNames, name) }

// MaxReplicas bounds every replica count: metro dev starts each replica
// as a process on this machine, and in Kubernetes a worker that needs
// more than this should scale by max_replicas (an autoscaler).
// MaxAutoscaleReplicas bounds max_replicas.
const (
	MaxReplicas          = 100
	MaxAutoscaleReplicas = 1000
)
