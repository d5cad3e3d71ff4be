package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dapr"
	"github.com/eventsidecar/eventsidecar/dedup"
)

// graceMargin is added to a subscription's attempt timeout to make the
// grace period deliveries in progress get at shutdown.
const graceMargin = time.Second

// Manager runs the deliveries of every configured subscription and of
// the Dapr app's (RunDapr), opens the app's streams, and answers the admin
// API's questions about them. It is safe for concurrent use.
type Manager struct {
	b    *broker.Client
	seen *dedup.Delivered
	m    *metrics
	log  *slog.Logger

	mu         sync.Mutex
	configured []*subscription          // in configuration order, then the Dapr app's as attached
	byName     map[string]*subscription // configured, Dapr's, and ad-hoc while a stream is open on them
	launch     func(s *subscription)    // while Run runs: starts delivering a subscription attached then
}

// subscription is one subscription in this sidecar: its consumer, its dead
// letters, and the counts shared by everything delivering it here (its
// webhook and its streams).
type subscription struct {
	sub         config.Subscription
	cons        jetstream.Consumer // set before ready is closed
	ready       chan struct{}      // closed once cons is in place, or consErr says why not
	readyOnce   sync.Once          // closes ready (configured subscriptions)
	consErr     error
	hook        pusher // its webhook or Dapr app; nil: delivered to streams only
	deadLetters *DeadLetters
	adhoc       bool
	dapr        *dapr.Subscription // a Dapr subscription's routes; nil for others
	notServed   string             // why a Dapr subscription is not delivered (bulkSubscribe); "" when it is
	streams     int                // open streams; guarded by Manager.mu

	inFlight                         atomic.Int64
	delivered, retried, deadLettered atomic.Uint64

	circuit  atomic.Pointer[circuit] // the webhook dispatcher's, once it runs
	running  dispatchers             // the dispatchers delivering it in this sidecar
	answered answered                // events answered 2xx whose record is pending
	inflight inflight                // events being delivered here, so a redelivered copy is not delivered beside them
}

// NewManager prepares the deliveries of subs: each subscription's durable
// consumer is created (or updated) as one of b's Prepare steps, so at once
// when b is ready and else once it is, and again after each reconnect. Run
// starts the webhooks and OpenSession opens sessions (gRPC Subscribe streams). Its metrics are
// registered on reg.
func NewManager(subs []config.Subscription, b *broker.Client, seen *dedup.Delivered,
	reg prometheus.Registerer, log *slog.Logger) (*Manager, error) {
	m := &Manager{b: b, seen: seen, log: log, byName: map[string]*subscription{}}
	mt, err := newMetrics(reg, m)
	if err != nil {
		return nil, err
	}
	m.m = mt
	for _, sub := range subs {
		s := &subscription{sub: sub, deadLetters: NewDeadLetters(b, sub), ready: make(chan struct{})}
		if sub.Endpoint != "" {
			hook, err := NewWebhook(sub)
			if err != nil {
				return nil, fmt.Errorf("egress: subscription %q: %w", sub.Name, err)
			}
			s.hook = hook
		}
		m.configured = append(m.configured, s)
		m.byName[sub.Name] = s
		b.Prepare(fmt.Sprintf("consumer %q", sub.Name), m.ensure(s))
	}
	return m, nil
}

// ensure returns the Prepare step that creates or updates the configured
// subscription s's consumer; the first success puts it in place.
func (m *Manager) ensure(s *subscription) func(context.Context) error {
	return func(ctx context.Context) error {
		cons, err := ensureConsumer(ctx, m.b, s.sub, 0)
		if err != nil {
			return err
		}
		s.readyOnce.Do(func() {
			s.cons = cons
			close(s.ready)
		})
		return nil
	}
}

// Run delivers every subscription with an endpoint to its webhook, and
// every Dapr subscription served to the Dapr app, those attached while it
// runs included, from when its consumer is in place until ctx ends, then
// stops as each dispatcher does: no more fetching, fetched events handed
// back, deliveries in progress finished within their attempt timeout.
// It returns once they all stopped. The webhook's dispatcher pulls with
// the subscription's own consumer handle; streams get handles of their
// own (see dispatcher).
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	launch := func(s *subscription) {
		wg.Go(func() { m.push(ctx, s) })
	}
	m.mu.Lock()
	for _, s := range m.configured {
		if s.hook != nil {
			launch(s)
		}
	}
	m.launch = launch
	m.mu.Unlock()
	<-ctx.Done()
	m.mu.Lock()
	m.launch = nil
	m.mu.Unlock()
	wg.Wait()
	return nil
}

// push delivers s to its webhook or Dapr app from when its consumer is in
// place until ctx ends.
func (m *Manager) push(ctx context.Context, s *subscription) {
	defer s.hook.CloseIdleConnections()
	select {
	case <-s.ready:
	case <-ctx.Done():
		return
	}
	newDispatcher(s, s.cons, s.sub.MaxInFlight, m.b, s.hook, m.seen, m.m, m.log).run(ctx, s.sub.Timeout+graceMargin)
}

// dispatcher returns a dispatcher delivering s through del (a stream)
// with at most window deliveries at once. A dispatcher of an ordered
// subscription gets a consumer handle of its own: nats.go keeps the pin of
// a priority group in the handle, and two dispatchers sharing one would
// both be pinned.
func (m *Manager) dispatcher(ctx context.Context, s *subscription, del deliverer, window int) (*dispatcher, error) {
	cons := s.cons
	if s.sub.OrderedByKey {
		var err error
		if cons, err = m.b.JetStream().Consumer(ctx, m.b.Stream(), s.sub.Name); err != nil {
			return nil, fmt.Errorf("egress: consumer %q: %w", s.sub.Name, err)
		}
	}
	return newDispatcher(s, cons, window, m.b, del, m.seen, m.m, m.log), nil
}

// Ready returns nil when every configured subscription's consumer, and
// every attached Dapr subscription's, is in place.
func (m *Manager) Ready(ctx context.Context) error {
	for _, s := range m.listed() {
		cons := s.consumer()
		if cons == nil {
			return fmt.Errorf("egress: consumer %q: not in place yet", s.sub.Name)
		}
		if _, err := cons.Info(ctx); err != nil {
			return fmt.Errorf("egress: consumer %q: %w", s.sub.Name, err)
		}
	}
	return m.stalled()
}

// Stats returns every subscription's live state: the configured ones in
// configuration order, then the Dapr ones as attached, then the ad-hoc
// ones with open streams by name.
func (m *Manager) Stats(ctx context.Context) []Stats {
	m.mu.Lock()
	subs := slices.Clone(m.configured)
	var adhoc []*subscription
	streams := map[*subscription]int{}
	for _, s := range m.byName {
		streams[s] = s.streams
		if s.adhoc {
			adhoc = append(adhoc, s)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(adhoc, func(a, b *subscription) int { return strings.Compare(a.sub.Name, b.sub.Name) })
	subs = append(subs, adhoc...)
	out := make([]Stats, len(subs))
	for i, s := range subs {
		out[i] = s.stats(ctx, streams[s])
	}
	return out
}

// listed returns the configured subscriptions and the Dapr ones
// attached.
func (m *Manager) listed() []*subscription {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.configured)
}

// subscriptions returns the configured subscriptions, the Dapr ones and
// the open ad-hoc ones.
func (m *Manager) subscriptions() []*subscription {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.configured)
	for _, s := range m.byName {
		if s.adhoc {
			out = append(out, s)
		}
	}
	return out
}

// DeadLetters returns the named subscription's dead letters: a configured
// subscription's, or an ad-hoc one's while a stream is open on it.
func (m *Manager) DeadLetters(name string) (*DeadLetters, error) {
	m.mu.Lock()
	s, ok := m.byName[name]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownSubscription, name)
	}
	return s.deadLetters, nil
}

// attach registers a stream on spec's subscription: the configured one of
// that name, or the ad-hoc one spec defines, whose consumer it creates or
// updates when no stream in this sidecar has it open.
func (m *Manager) attach(ctx context.Context, spec SessionSpec) (*subscription, error) {
	m.mu.Lock()
	s, ok := m.byName[spec.Name]
	switch {
	case spec.AdHoc == nil && !ok:
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", ErrUnknownSubscription, spec.Name)
	case spec.AdHoc == nil || (ok && s.adhoc && reflect.DeepEqual(s.sub, *spec.AdHoc)):
		s.streams++
		m.mu.Unlock()
		return s, m.waitReady(ctx, s)
	case ok && !s.adhoc:
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %q is a configured subscription; name it without a topic", ErrConflict, spec.Name)
	case ok:
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: an ad-hoc subscription %q with other settings is open in this sidecar", ErrConflict, spec.Name)
	}
	// A new ad-hoc subscription: reserve the name while its consumer is made.
	sub := *spec.AdHoc
	s = &subscription{sub: sub, adhoc: true, deadLetters: NewDeadLetters(m.b, sub), streams: 1, ready: make(chan struct{})}
	m.byName[sub.Name] = s
	m.mu.Unlock()
	s.cons, s.consErr = ensureConsumer(ctx, m.b, sub, adhocIdle)
	close(s.ready)
	return s, m.waitReady(ctx, s)
}

// waitReady waits until s's consumer is in place; on failure it detaches
// the stream.
func (m *Manager) waitReady(ctx context.Context, s *subscription) error {
	select {
	case <-s.ready:
		if s.consErr == nil {
			return nil
		}
		m.detach(s)
		return s.consErr
	case <-ctx.Done():
		m.detach(s)
		return fmt.Errorf("egress: subscription %q: %w", s.sub.Name, ctx.Err())
	}
}

// detach ends a stream's registration; an ad-hoc subscription is
// forgotten with its last stream.
func (m *Manager) detach(s *subscription) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s.streams--
	if s.adhoc && s.streams == 0 {
		delete(m.byName, s.sub.Name)
	}
}

func (s *subscription) stats(ctx context.Context, streams int) Stats {
	pending, _ := s.pending(ctx)
	state, reason := s.state(streams)
	return Stats{
		Name: s.sub.Name, Topic: s.sub.Topic, Endpoint: redact(s.sub.Endpoint), Streams: streams,
		Pending: pending, InFlight: s.inFlight.Load(),
		Delivered: s.delivered.Load(), Retried: s.retried.Load(), DeadLettered: s.deadLettered.Load(),
		State: state, StateReason: reason,
	}
}

// consumer returns s's consumer, or nil while it is being made or when
// making it failed.
func (s *subscription) consumer() jetstream.Consumer {
	select {
	case <-s.ready:
		return s.cons
	default:
		return nil
	}
}

func (s *subscription) pending(ctx context.Context) (uint64, error) {
	cons := s.consumer()
	if cons == nil {
		return 0, errors.New("egress: consumer not in place")
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

// redact drops the userinfo and query of an endpoint URL, which may hold
// credentials.
func redact(endpoint string) string {
	if endpoint == "" {
		return ""
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
