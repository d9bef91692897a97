package proxy

import (
	"strconv"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus series. Requests are labelled by
// route pattern, never by raw path, so a scan of random URLs cannot blow
// up the number of series.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
}

// routeMetrics caches the series of one route per status, so the hot path
// does no label hashing after a route's first request with a status.
type routeMetrics struct {
	m       *metrics
	pattern string
	byCode  [600]atomic.Pointer[series]
}

type series struct {
	c prometheus.Counter
	o prometheus.Observer
}

const unmatchedRoute = "(none)"

func newMetrics(reg prometheus.Registerer, nc *nats.Conn, routeCount func() int) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "metro", Subsystem: "gateway", Name: "requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "metro", Subsystem: "gateway", Name: "request_duration_seconds",
			Help:    "Time from request to response, by route pattern and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "code"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "metro", Subsystem: "gateway", Name: "requests_in_flight",
			Help: "Requests being served now.",
		}),
	}
	connected := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "metro", Subsystem: "gateway", Name: "nats_connected",
		Help: "1 while the gateway is connected to NATS.",
	}, func() float64 {
		if nc.IsConnected() {
			return 1
		}
		return 0
	})
	routes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "metro", Subsystem: "gateway", Name: "routes",
		Help: "Routes in the route table.",
	}, func() float64 { return float64(routeCount()) })
	reg.MustRegister(m.requests, m.duration, m.inflight, connected, routes)
	return m
}

func (m *metrics) forRoute(pattern string) *routeMetrics {
	return &routeMetrics{m: m, pattern: pattern}
}

// observe records one answered request; it is safe for concurrent use
// because a racing first use of a code only resolves the same series twice.
func (rm *routeMetrics) observe(code int, seconds float64) {
	if code < 0 || code >= len(rm.byCode) {
		code = 0
	}
	s := rm.byCode[code].Load()
	if s == nil {
		label := strconv.Itoa(code)
		s = &series{
			c: rm.m.requests.WithLabelValues(rm.pattern, label),
			o: rm.m.duration.WithLabelValues(rm.pattern, label),
		}
		rm.byCode[code].Store(s)
	}
	s.c.Inc()
	s.o.Observe(seconds)
}
