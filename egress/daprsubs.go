package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dapr"
	"github.com/eventsidecar/eventsidecar/internal/pause"
)

// reasonBulk is why a bulkSubscribe subscription is shown paused.
const reasonBulk = "bulkSubscribe is not served: its events wait in the stream"

// DaprApp is the Dapr app of this sidecar as it is called over
// dapr.app_protocol: it lists the app's programmatic subscriptions and
// makes the deliveries of each, and holds what every Dapr subscription is
// delivered with (dapr.subscription). Create it with NewDaprApp; it is
// safe for concurrent use.
type DaprApp struct {
	appID    string
	pubsubs  []string
	settings config.DaprSubscription
	proto    daprProtocol
	log      *slog.Logger
}

// daprProtocol is how a Dapr app is called, one implementation per
// dapr.app_protocol (daprHTTP for http, daprGRPC for grpc). It must be safe for concurrent
// use.
type daprProtocol interface {
	// Subscriptions asks the app for its programmatic subscriptions: none
	// and nil when it has none; an error wrapping ErrAppNotUp while it
	// cannot be reached, another when its answer cannot be read. Entries
	// it cannot serve are logged and left out.
	Subscriptions(ctx context.Context) ([]dapr.Subscription, error)
	// deliverer returns the deliverer of ds's events, delivered as sub.
	deliverer(ds dapr.Subscription, sub config.Subscription) (pusher, error)
	// endpoint is where the app is called, as Stats shows it.
	endpoint() string
	// close releases the connections to the app, once no more calls
	// will be made.
	close() error
}

// NewDaprApp returns the Dapr app cfg.Dapr describes, reached at
// app_host:app_port over app_protocol; log is for what it cannot serve.
// The app port must be set. Close it once it will be called no more.
func NewDaprApp(cfg config.Config, log *slog.Logger) (*DaprApp, error) {
	d := cfg.Dapr
	if d.AppPort == 0 {
		return nil, errors.New("egress: dapr.app_port is not set: there is no Dapr app to call")
	}
	app := &DaprApp{appID: cfg.AppID, pubsubs: d.PubSubNames, settings: d.Subscription, log: log}
	switch d.AppProtocol {
	case "", "http":
		app.proto = newDaprHTTP(cfg, log)
	case "grpc":
		p, err := newDaprGRPC(cfg, log)
		if err != nil {
			return nil, err
		}
		app.proto = p
	default:
		return nil, fmt.Errorf("egress: dapr.app_protocol %q is not served", d.AppProtocol)
	}
	return app, nil
}

// Close releases the connections to the app; call it once RunDapr and the
// deliveries it started have returned.
func (a *DaprApp) Close() error { return a.proto.close() }

// hostPort joins a host and a port.
func hostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// subscription is the sidecar's subscription that delivers ds: named by
// ds.Name, on ds's topic, its dead letters on ds's deadLetterTopic (or
// deadletter.<name>), with the dapr.subscription settings.
func (a *DaprApp) subscription(ds dapr.Subscription) config.Subscription {
	sub := config.DefaultSubscription()
	sub.Name, sub.Topic, sub.Endpoint = ds.Name(a.appID), ds.Topic, a.proto.endpoint()
	sub.DeadLetterTopic = ds.DeadLetterTopic
	st := a.settings
	sub.MaxInFlight, sub.OrderedByKey, sub.Timeout, sub.Retry, sub.SigningSecret =
		st.MaxInFlight, st.OrderedByKey, st.Timeout, st.Retry, st.SigningSecret
	return sub
}

// discover asks the app for its programmatic subscriptions until it
// answers: after each failure again after a backoff growing from
// initial_backoff to max_backoff (without jitter). It reports false when
// ctx ended first.
func (a *DaprApp) discover(ctx context.Context) ([]dapr.Subscription, bool) {
	for attempt := 1; ; attempt++ {
		subs, err := a.proto.Subscriptions(ctx)
		if err == nil {
			return subs, true
		}
		delay := backoffCeiling(attempt, a.settings.Retry)
		switch {
		case ctx.Err() != nil:
			return nil, false
		case !errors.Is(err, ErrAppNotUp):
			a.log.Warn("the Dapr app's subscriptions could not be read; asking again", "error", err, "in", delay)
		case attempt == 1:
			a.log.Info("waiting for the Dapr app to list its subscriptions", "app", a.proto.endpoint(), "reason", err)
		default:
			a.log.Debug("the Dapr app is not up yet", "reason", err, "in", delay)
		}
		if !pause.For(ctx, delay) {
			return nil, false
		}
	}
}

// RunDapr attaches the Dapr subscriptions of app (contract §9): the
// declared ones (dapr.LoadResources) at once, then the app's programmatic
// ones, asked for until it answers (see discover); it returns once they
// are attached, or when ctx ends, always nil. Each is delivered by Run as
// a configured subscription is, from when its consumer is in place, and
// is shared by every sidecar of the same app id. One that cannot be
// served is logged and left out: a pub/sub name not in
// dapr.pubsub_names, a topic or deadLetterTopic the sidecar's topic
// syntax refuses, or a name another subscription has. A bulkSubscribe
// subscription gets its consumer, so that its events wait in the stream,
// but is not delivered: it is shown paused with the reason.
func (m *Manager) RunDapr(ctx context.Context, app *DaprApp, declared []dapr.Subscription) error {
	m.attachAll(app, declared)
	subs, ok := app.discover(ctx)
	if !ok {
		return nil
	}
	m.attachAll(app, subs)
	app.log.Info("Dapr subscriptions attached", "declarative", len(declared), "programmatic", len(subs))
	return nil
}

// attachAll attaches subs, logging those it cannot.
func (m *Manager) attachAll(app *DaprApp, subs []dapr.Subscription) {
	for _, ds := range subs {
		if err := m.attachDapr(app, ds); err != nil {
			app.log.Error("Dapr subscription not served", "pubsub", ds.PubSub, "topic", ds.Topic,
				"kind", ds.Kind, "resource", ds.Resource, "error", err)
		}
	}
}

// attachDapr adds the subscription delivering ds to app: its consumer
// created as one of the broker's Prepare steps, and its deliveries
// started when Run runs.
func (m *Manager) attachDapr(app *DaprApp, ds dapr.Subscription) error {
	if !slices.Contains(app.pubsubs, ds.PubSub) {
		return fmt.Errorf("egress: pub/sub %q is not in dapr.pubsub_names", ds.PubSub)
	}
	sub := app.subscription(ds)
	checked := sub
	checked.Endpoint = "" // the app's address (grpc:// for a gRPC app) is checked with the dapr block
	if err := checked.Validate(); err != nil {
		return err
	}
	s := &subscription{sub: sub, dapr: &ds, deadLetters: NewDeadLetters(m.b, sub), ready: make(chan struct{})}
	if ds.Bulk {
		s.notServed = reasonBulk
		app.log.Warn("a bulkSubscribe subscription is not served; its events wait in the stream", "subscription", sub.Name)
	} else {
		hook, err := app.proto.deliverer(ds, sub)
		if err != nil {
			return err
		}
		s.hook = hook
	}
	m.mu.Lock()
	if _, taken := m.byName[sub.Name]; taken {
		m.mu.Unlock()
		return fmt.Errorf("%w: %q is the name of another subscription", ErrConflict, sub.Name)
	}
	m.configured = append(m.configured, s)
	m.byName[sub.Name] = s
	if m.launch != nil && s.hook != nil {
		m.launch(s)
	}
	m.mu.Unlock()
	m.b.Prepare(fmt.Sprintf("consumer %q", sub.Name), m.ensure(s))
	return nil
}

// DaprSubscriptions returns the Dapr subscriptions being delivered whose
// consumer is in place, in the order attached, for the Dapr metadata API.
func (m *Manager) DaprSubscriptions() []dapr.Subscription {
	var out []dapr.Subscription
	for _, s := range m.listed() {
		if s.dapr != nil && s.notServed == "" && s.consumer() != nil {
			out = append(out, *s.dapr)
		}
	}
	return out
}
