package daemon

import (
	"errors"
	"log/slog"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dapr"
	"github.com/eventsidecar/eventsidecar/daprapi"
	"github.com/eventsidecar/eventsidecar/egress"
)

// daprApp is the Dapr app's side of the daemon: the app, called over
// dapr.app_protocol, and its declarative subscriptions.
type daprApp struct {
	app      *egress.DaprApp
	declared []dapr.Subscription
}

// errNoAppPort refuses Subscription resources without an app to deliver
// them to.
var errNoAppPort = errors.New("daemon: dapr.resources_path is set, but dapr.app_port is not: its subscriptions need the app's port")

// newDaprApp is the Dapr app cfg names (none without dapr.app_port) with
// the Subscription resources of dapr.resources_path, read now so that a
// bad one fails the start naming its file.
func newDaprApp(cfg config.Config, log *slog.Logger) (*daprApp, error) {
	if cfg.Dapr.AppPort == 0 {
		if cfg.Dapr.ResourcesPath != "" {
			return nil, errNoAppPort
		}
		return nil, nil
	}
	app, err := egress.NewDaprApp(cfg, log)
	if err != nil {
		return nil, err
	}
	d := &daprApp{app: app}
	if cfg.Dapr.ResourcesPath != "" {
		if d.declared, err = dapr.LoadResources(cfg.Dapr.ResourcesPath, cfg.AppID); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// close closes the app's connections; d may be nil (no Dapr app).
func (d *daprApp) close() error {
	if d == nil {
		return nil
	}
	return d.app.Close()
}

// daprSubscriptions lists the Dapr subscriptions subs delivers, in the
// shape of Dapr's metadata API.
func daprSubscriptions(subs *egress.Manager) func() []daprapi.Subscription {
	return func() []daprapi.Subscription {
		var out []daprapi.Subscription
		for _, ds := range subs.DaprSubscriptions() {
			out = append(out, metadataSubscription(ds))
		}
		return out
	}
}

// metadataSubscription is ds as GET /v1.0/metadata lists it.
func metadataSubscription(ds dapr.Subscription) daprapi.Subscription {
	s := daprapi.Subscription{PubSubName: ds.PubSub, Topic: ds.Topic, Metadata: ds.Metadata,
		DeadLetterTopic: ds.DeadLetterTopic, Type: string(ds.Kind)}
	for _, r := range ds.Rules {
		rule := daprapi.Rule{Path: r.Path}
		if r.Match != nil {
			rule.Match = r.Match.String()
		}
		s.Rules = append(s.Rules, rule)
	}
	return s
}
