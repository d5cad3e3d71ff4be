package egress

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcome labels of eventsidecar_deliveries_total beyond the Kinds.
const (
	outcomeDuplicate = "duplicate" // already delivered within the duplicate window
	outcomeSkipped   = "skipped"   // not for this subscription (type filter, another's replay)
	outcomeInvalid   = "invalid"   // not a CloudEvent; terminated
	outcomePaused    = "paused"    // failed while the app is down; not counted as an attempt
)

// pendingTimeout bounds the consumer lookups of one scrape.
const pendingTimeout = 2 * time.Second

// metrics are the delivery-side Prometheus families.
type metrics struct {
	deliveries  *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	deadLetters *prometheus.CounterVec
	inFlight    *prometheus.GaugeVec
	circuitOpen *prometheus.GaugeVec
	transitions *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, m *Manager) (*metrics, error) {
	mt := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsidecar_deliveries_total",
			Help: "Delivery outcomes, by subscription and outcome (delivered, retry, dead_letter, duplicate, skipped, invalid, and paused: an attempt that failed while the app is down, not counted).",
		}, []string{"subscription", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventsidecar_delivery_duration_seconds",
			Help:    "Duration of one delivery attempt to the app, by subscription.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"subscription"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsidecar_dead_letters_total",
			Help: "Dead letters stored, by subscription.",
		}, []string{"subscription"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventsidecar_deliveries_in_flight",
			Help: "Delivery attempts in progress in this sidecar, by subscription.",
		}, []string{"subscription"}),
		circuitOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventsidecar_subscription_circuit_open",
			Help: "1 while the subscription's webhook delivery is paused in this sidecar (the app is down, or has not answered yet), else 0.",
		}, []string{"subscription"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventsidecar_subscription_circuit_transitions_total",
			Help: "Changes of the subscription's webhook delivery state in this sidecar, by subscription and the state entered (paused, delivering).",
		}, []string{"subscription", "state"}),
	}
	for _, c := range []prometheus.Collector{mt.deliveries, mt.latency, mt.deadLetters, mt.inFlight,
		mt.circuitOpen, mt.transitions, pendingCollector{m}} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("egress: register metrics: %w", err)
		}
	}
	return mt, nil
}

// tally counts one subscription's deliveries in this sidecar: in the
// delivery metrics, under its name, and in the counts its Stats show.
// Safe for concurrent use.
type tally struct {
	m *metrics
	s *subscription
}

// outcome counts one in eventsidecar_deliveries_total with the label
// outcome.
func (t tally) outcome(outcome string) {
	t.m.deliveries.WithLabelValues(t.s.sub.Name, outcome).Inc()
}

// deadLettered counts a dead letter stored.
func (t tally) deadLettered() {
	t.s.deadLettered.Add(1)
	t.m.deadLetters.WithLabelValues(t.s.sub.Name).Inc()
}

// circuitMetrics returns the function a subscription's circuit reports
// its state with: the gauge, and, unless first (the state it starts in),
// a transition.
func (mt *metrics) circuitMetrics(subscription string) func(paused, first bool) {
	open := mt.circuitOpen.WithLabelValues(subscription)
	return func(paused, first bool) {
		state := StateDelivering
		open.Set(0)
		if paused {
			state = StatePaused
			open.Set(1)
		}
		if !first {
			mt.transitions.WithLabelValues(subscription, state).Inc()
		}
	}
}

var pendingDesc = prometheus.NewDesc("eventsidecar_subscription_pending",
	"Events stored but not yet delivered to any sidecar, by subscription.", []string{"subscription"}, nil)

// pendingCollector reads each subscription's pending count from the broker
// at scrape time.
type pendingCollector struct{ m *Manager }

func (pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- pendingDesc }

func (p pendingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), pendingTimeout)
	defer cancel()
	for _, s := range p.m.subscriptions() {
		if n, err := s.pending(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n), s.sub.Name)
		}
	}
}
