package egress

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dedup"
)

// graceMargin is added to a subscription's attempt timeout to make the
// grace period deliveries in progress get at shutdown.
const graceMargin = time.Second

// Manager runs the deliveries of every configured subscription and answers
// the admin API's questions about them. It is safe for concurrent use.
type Manager struct {
	dispatchers []*dispatcher
	byName      map[string]*dispatcher
}

// NewManager creates (or updates) each subscription's durable consumer and
// prepares its deliveries; Run starts them. Its metrics are registered on
// reg.
func NewManager(ctx context.Context, subs []config.Subscription, b *broker.Client, seen *dedup.Delivered,
	reg prometheus.Registerer, log *slog.Logger) (*Manager, error) {
	m := &Manager{byName: map[string]*dispatcher{}}
	mt, err := newMetrics(reg, m)
	if err != nil {
		return nil, err
	}
	for _, sub := range subs {
		hook, err := NewWebhook(sub)
		if err != nil {
			return nil, fmt.Errorf("egress: subscription %q: %w", sub.Name, err)
		}
		cons, err := ensureConsumer(ctx, b, sub)
		if err != nil {
			return nil, err
		}
		d := newDispatcher(sub, b, cons, hook, seen, mt, log)
		m.dispatchers = append(m.dispatchers, d)
		m.byName[sub.Name] = d
	}
	return m, nil
}

// Run delivers every subscription's events until ctx ends, then stops as
// each dispatcher does: no more fetching, fetched events handed back,
// deliveries in progress finished within their attempt timeout.
func (m *Manager) Run(ctx context.Context) error {
	var g errgroup.Group
	for _, d := range m.dispatchers {
		g.Go(func() error { return d.run(ctx, d.sub.Timeout+graceMargin) })
	}
	return g.Wait()
}

// Ready returns nil when every subscription's consumer is in place.
func (m *Manager) Ready(ctx context.Context) error {
	for _, d := range m.dispatchers {
		if _, err := d.cons.Info(ctx); err != nil {
			return fmt.Errorf("egress: consumer %q: %w", d.sub.Name, err)
		}
	}
	return nil
}

// Stats returns every subscription's live state, in configuration order.
func (m *Manager) Stats(ctx context.Context) []Stats {
	out := make([]Stats, len(m.dispatchers))
	for i, d := range m.dispatchers {
		out[i] = d.stats(ctx)
	}
	return out
}

// DeadLetters returns the named subscription's dead letters.
func (m *Manager) DeadLetters(name string) (*DeadLetters, error) {
	d, ok := m.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownSubscription, name)
	}
	return d.deadLetters, nil
}

// redact drops the userinfo and query of an endpoint URL, which may hold
// credentials.
func redact(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
