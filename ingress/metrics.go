package ingress

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsidecar/eventsidecar/wire"
)

// metrics are the publish-side Prometheus families.
type metrics struct {
	published  *prometheus.CounterVec
	duplicates *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	// inFlightBytes is the in-flight byte budget held (http.max_in_flight_bytes).
	inFlightBytes prometheus.Gauge
	// The families by mode, their children cached.
	publishedBy, duplicatesBy perMode[prometheus.Counter]
	latencyBy                 perMode[prometheus.Observer]
}

// perMode gives the child of a metric vector of each request mode, made on
// first use as WithLabelValues makes it (so that a mode's series appears
// when the first request of it counts), then cached. It is safe for
// concurrent use.
type perMode[T any] struct {
	with     func(lvs ...string) T // the vector's WithLabelValues
	children [wire.ModeBatch + 1]atomic.Pointer[T]
}

// of is the child of mode m.
func (p *perMode[T]) of(m wire.Mode) T {
	if m < 0 || int(m) >= len(p.children) {
		return p.with(m.String())
	}
	if c := p.children[m].Load(); c != nil {
		return *c
	}
	c := p.with(m.String())
	p.children[m].Store(&c)
	return c
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsidecar_events_published_total",
			Help: "Events stored by the broker, by request mode.",
		}, []string{"mode"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsidecar_events_duplicate_total",
			Help: "Events not stored again because their idempotency key was seen within the duplicate window, by request mode.",
		}, []string{"mode"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsidecar_publish_rejected_total",
			Help: "Publish requests answered with an error, by reason.",
		}, []string{"reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventsidecar_publish_duration_seconds",
			Help:    "Time from a publish request's arrival to its answer, by request mode.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"mode"}),
		inFlightBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventsidecar_publish_in_flight_bytes",
			Help: "Bytes of publish requests (HTTP and gRPC) being read or waiting for the broker; at most http.max_in_flight_bytes.",
		}),
	}
	m.publishedBy.with, m.duplicatesBy.with = m.published.WithLabelValues, m.duplicates.WithLabelValues
	m.latencyBy.with = m.latency.WithLabelValues
	for _, c := range []prometheus.Collector{m.published, m.duplicates, m.rejected, m.latency, m.inFlightBytes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("ingress: register metrics: %w", err)
		}
	}
	return m, nil
}
