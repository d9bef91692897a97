package worker

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the worker's Prometheus series: what overload did to it.
// Requests themselves are counted in $SRV.STATS, as for any NATS service.
type metrics struct {
	expired prometheus.Counter
	shed    prometheus.Counter
	// gatherer serves /metrics on the health address; nil when the
	// caller's registerer holds the series.
	gatherer prometheus.Gatherer
}

func newMetrics(name string, reg prometheus.Registerer, b *backlog) *metrics {
	m := &metrics{}
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, m.gatherer = r, r
	}
	labels := prometheus.Labels{"worker": name}
	m.expired = registerOnce(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "metro", Subsystem: "worker", Name: "requests_expired_total", ConstLabels: labels,
		Help: "Requests dropped unserved because their Metro-Deadline had passed: the client had stopped waiting.",
	}))
	m.shed = registerOnce(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "metro", Subsystem: "worker", Name: "requests_shed_total", ConstLabels: labels,
		Help: "Requests answered 503 at once because every handler was busy and the backlog was full.",
	}))
	registerOnce(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "metro", Subsystem: "worker", Name: "backlog", ConstLabels: labels,
		Help: "Requests waiting for a free handler.",
	}, func() float64 { return float64(b.waiting()) }))
	registerOnce(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "metro", Subsystem: "worker", Name: "concurrency_limit", ConstLabels: labels,
		Help: "Handlers allowed to run at once now: the configured concurrency, lowered while handlers want more CPU than there is.",
	}, func() float64 { return float64(b.current()) }))
	return m
}

// registerOnce registers c with reg, or returns the collector already there
// (a second worker of the same name in one process shares its series).
func registerOnce[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
