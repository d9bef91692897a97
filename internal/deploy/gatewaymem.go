package deploy

import (
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/metropolis-dev/metro/internal/config"
)

// memoryLimits are the gateway's limits written into its pods' metro.yaml.
type memoryLimits struct {
	maxInFlight   int
	maxBodyMemory config.ByteSize
}

// gatewayLimits sizes gateway.max_in_flight and gateway.max_body_memory
// to the gateway container's memory limit, so that neither a hung worker
// (requests piling up until their timeout) nor slow uploads can take the
// gateway past it: see config.FitGateway. Without a memory limit the
// file's values go as they are.
func gatewayLimits(c *config.Config, r config.Resources) (memoryLimits, error) {
	l := memoryLimits{c.Gateway.MaxInFlight, c.Gateway.MaxBodyMemory}
	q, err := resource.ParseQuantity(r.Limits.Memory)
	if err != nil || q.Sign() <= 0 {
		return l, nil // none, or reported by checkResources
	}
	heap := q.Value() / 10 * 9 // GOMEMLIMIT, as memLimit sets it
	l.maxInFlight, l.maxBodyMemory, err = c.FitGateway(heap, "deploy.gateway.resources.limits.memory")
	return l, err
}
