package config

import "fmt"

// What the gateway's memory holds, for sizing gateway.max_in_flight and
// gateway.max_body_memory to the memory limit of its container. The
// defaults fit the 256Mi limit that metro deploy sets (GOMEMLIMIT at 90%
// of it, 230 MiB):
//
//	GatewayBaseMemory (runtime, NATS buffers, route table, metrics)  32 MiB
//	DefaultMaxInFlight x GatewayRequestMemory = 2048 x 40 KiB         80 MiB
//	DefaultMaxBodyMemory                                              64 MiB
//	                                                           total 176 MiB
//
// leaving 54 MiB for replies on their way to clients.
// GatewayRequestMemory is what one request costs while it waits for a
// reply: its connection's goroutine and buffers, the request and its
// headers, the NATS message and the reply slot. About 30 KB measured
// against a hung worker, with a browser's headers; internal/proxy's
// TestRequestMemory holds the gateway to the figure.
const (
	DefaultMaxInFlight   = 2048
	DefaultMaxBodyMemory = 64 << 20
	GatewayRequestMemory = 40 << 10
	GatewayBaseMemory    = 32 << 20
)

// GatewayMemory is the memory a gateway may need with these limits,
// without replies; ok is false when a limit is 0 (none), so there is no
// bound.
func GatewayMemory(maxInFlight int, maxBodyMemory ByteSize) (bytes int64, ok bool) {
	if maxInFlight <= 0 || maxBodyMemory <= 0 {
		return 0, false
	}
	return GatewayBaseMemory + int64(maxInFlight)*GatewayRequestMemory + maxBodyMemory.Int64(), true
}

// FitGateway returns the gateway's limits for a heap of at most heap
// bytes (GOMEMLIMIT of a container whose memory limit limitKey sets).
// Limits the user sets are kept, and are an error when they do not fit;
// the others are the defaults when those fit, else what fits: bodies get
// half the room (at least one body the gateway holds), requests the rest.
func (c *Config) FitGateway(heap int64, limitKey string) (maxInFlight int, maxBodyMemory ByteSize, err error) {
	g := c.Gateway
	maxInFlight, maxBodyMemory = g.MaxInFlight, g.BodyMemory()
	setFlight, setBody := c.chose("gateway.max_in_flight"), c.chose("gateway.max_body_memory")
	if need, ok := GatewayMemory(maxInFlight, maxBodyMemory); ok && need <= heap {
		return maxInFlight, maxBodyMemory, nil
	}
	switch {
	case setFlight && maxInFlight == 0:
		return 0, 0, c.Errorf("gateway.max_in_flight", "0 (no limit) lets requests take the gateway past its memory limit (%s); set a limit", limitKey)
	case setBody && maxBodyMemory == 0:
		return 0, 0, c.Errorf("gateway.max_body_memory", "0 (no limit) lets request bodies take the gateway past its memory limit (%s); set a limit", limitKey)
	}
	room := heap - GatewayBaseMemory
	switch {
	case !setFlight && !setBody:
		// Whole MiB read better in the pods' metro.yaml.
		maxBodyMemory = max(min(maxBodyMemory, ByteSize(room/2)&^(1<<20-1)), g.HeldBody())
		maxInFlight = int((room - maxBodyMemory.Int64()) / GatewayRequestMemory)
	case !setFlight:
		maxInFlight = int((room - maxBodyMemory.Int64()) / GatewayRequestMemory)
	case !setBody:
		maxBodyMemory = ByteSize(room - int64(maxInFlight)*GatewayRequestMemory)
	}
	if maxInFlight >= 1 && maxBodyMemory >= g.HeldBody() {
		if need, _ := GatewayMemory(maxInFlight, maxBodyMemory); need <= heap {
			return maxInFlight, maxBodyMemory, nil
		}
	}
	// Name what the user should change: a limit they set, else the memory.
	key := limitKey
	switch {
	case setFlight:
		key = "gateway.max_in_flight"
	case setBody:
		key = "gateway.max_body_memory"
	}
	flight, body := max(maxInFlight, 1), max(maxBodyMemory, g.HeldBody())
	need, _ := GatewayMemory(flight, body)
	where := " (" + limitKey + ")"
	if key == limitKey {
		where = ""
	}
	return 0, 0, c.Errorf(key, "the gateway does not fit its memory limit%s: %d requests in flight at %s each, %s of request bodies (at least one body the gateway holds) and %s for the rest need %s, above the %s its heap may take",
		where, flight, ByteSize(GatewayRequestMemory), body, ByteSize(GatewayBaseMemory), mib(need), mib(heap))
}

func mib(n int64) string { return fmt.Sprintf("%.0fMiB", float64(n)/(1<<20)) }
