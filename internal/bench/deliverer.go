package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dedup"
	"github.com/eventsidecar/eventsidecar/egress"
)

// subscription is the name of the benchmark's subscription, and
// subscriptionTopic its topic pattern, which takes every event published.
const (
	subscription      = "bench"
	subscriptionTopic = "bench.>"
)

// deliverer is the sidecar's egress on a node: an egress.Manager with one
// subscription delivering to a webhook (or, with none, only to the gRPC
// Subscribe streams opened on it), its consumer in place, not yet running.
// It is used by one goroutine: start once, then stop.
type deliverer struct {
	m    *egress.Manager
	reg  *prometheus.Registry
	halt context.CancelFunc
	done chan error
}

// newDeliverer creates the subscription's consumer on n's broker, so that
// every event stored from now on is delivered to endpoint (to streams only
// when it is "") with at most inFlight deliveries at once.
func newDeliverer(ctx context.Context, n *node, endpoint string, inFlight int, log *slog.Logger) (*deliverer, error) {
	bc := n.cfg.Broker
	seen, err := dedup.OpenDelivered(ctx, n.broker.JetStream(), bc.Stream, bc.DuplicateWindow, bc.Replicas)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	sub := config.DefaultSubscription()
	sub.Name, sub.Topic, sub.Endpoint = subscription, subscriptionTopic, endpoint
	sub.MaxInFlight = inFlight
	reg := prometheus.NewRegistry()
	m, err := egress.NewManager([]config.Subscription{sub}, n.broker, seen, reg, log)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return &deliverer{m: m, reg: reg}, nil
}

// start delivers to the webhook until stop is called; ctx only carries
// values.
func (d *deliverer) start(ctx context.Context) {
	runCtx, halt := context.WithCancel(context.WithoutCancel(ctx))
	d.halt, d.done = halt, make(chan error, 1)
	go func() { d.done <- d.m.Run(runCtx) }()
}

// stop ends the deliveries gracefully, if running, and returns the
// subscription's counters.
func (d *deliverer) stop(ctx context.Context) (egress.Stats, error) {
	var err error
	if d.halt != nil {
		d.halt()
		err = <-d.done
		d.halt = nil
	}
	stats := d.m.Stats(ctx)
	if len(stats) != 1 {
		return egress.Stats{}, errors.Join(err, fmt.Errorf("bench: %d subscriptions' stats, want 1", len(stats)))
	}
	return stats[0], err
}

// attempts is the histogram of delivery attempt durations so far.
func (d *deliverer) attempts() (Histogram, error) {
	return GatherHistogram(d.reg, "eventsidecar_delivery_duration_seconds")
}

// failures counts the outcomes that are not a first-time delivery, from
// the subscription's counters and the duplicates in the app's arrivals a,
// and describes the first.
func failures(st egress.Stats, a *arrivals) (int64, string) {
	dups, firstDup := a.duplicates()
	n := int64(st.Retried+st.DeadLettered) + dups
	switch {
	case st.Retried > 0 || st.DeadLettered > 0:
		return n, fmt.Sprintf("bench: %d retried and %d dead-lettered deliveries", st.Retried, st.DeadLettered)
	case dups > 0:
		return n, fmt.Sprintf("bench: %d duplicate deliveries, the first of %q", dups, firstDup)
	}
	return 0, ""
}
