package daprapi

import (
	"context"
	"net/http"
	"time"

	"github.com/eventsidecar/eventsidecar/dapr"
	"github.com/eventsidecar/eventsidecar/problem"
)

// checkTimeout bounds one health check.
const checkTimeout = 2 * time.Second

// Subscription is a Dapr subscription as GET /v1.0/metadata lists it, in
// Dapr's shape.
type Subscription struct {
	// PubSubName and Topic are what it subscribes to.
	PubSubName string `json:"pubsubname"`
	Topic      string `json:"topic"`
	// Metadata is the subscription's metadata (rawPayload, ...).
	Metadata map[string]string `json:"metadata,omitempty"`
	// Rules route its events, in order.
	Rules []Rule `json:"rules,omitempty"`
	// DeadLetterTopic receives what is not delivered ("" when none is
	// named).
	DeadLetterTopic string `json:"deadLetterTopic"`
	// Type is "DECLARATIVE" or "PROGRAMMATIC".
	Type string `json:"type"`
}

// Rule is one routing rule of a Subscription: the path of the first rule
// whose match is true (or empty) receives the event.
type Rule struct {
	// Match is a CEL expression over the event; "" matches every event.
	Match string `json:"match,omitempty"`
	// Path is the app's route for the events it matches.
	Path string `json:"path,omitempty"`
}

// metadataJSON is the answer of GET /v1.0/metadata.
type metadataJSON struct {
	ID            string         `json:"id"`
	Components    []component    `json:"components,omitempty"`
	Subscriptions []Subscription `json:"subscriptions,omitempty"`
	App           *appConnection `json:"appConnectionProperties,omitempty"`
}

type component struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Version string `json:"version"`
}

type appConnection struct {
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	Address  string `json:"channelAddress"`
}

// healthz is GET /v1.0/healthz: 204 when the sidecar is ready, else 500
// ERR_HEALTH_NOT_READY saying why; with ?appid= naming another app, 500
// ERR_HEALTH_APPID_NOT_MATCH.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if err := check(r.Context(), s.status.Ready); err != nil {
		dapr.WriteJSON(w, &dapr.Error{Code: dapr.CodeHealthNotReady, Cause: err.Error()})
		return
	}
	if q := r.URL.Query(); q.Has("appid") && q.Get("appid") != s.cfg.AppID {
		dapr.WriteJSON(w, &dapr.Error{Code: dapr.CodeHealthAppIDMismatch})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// outbound is GET /v1.0/healthz/outbound: 204 once the broker is
// connected, else 500 ERR_OUTBOUND_HEALTH_NOT_READY.
func (s *Server) outbound(w http.ResponseWriter, r *http.Request) {
	if err := check(r.Context(), s.status.Outbound); err != nil {
		dapr.WriteJSON(w, &dapr.Error{Code: dapr.CodeOutboundNotReady, Cause: err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// check runs one health check, bounded by checkTimeout.
func check(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	return fn(ctx)
}

// metadata is GET /v1.0/metadata: 200 at once, broker or not (SDKs wait
// for it before their first call): the app id, a component per pub/sub
// name, the subscriptions in place and, with dapr.app_port, how the app
// is reached.
func (s *Server) metadata(w http.ResponseWriter, _ *http.Request) {
	m := metadataJSON{ID: s.cfg.AppID}
	for _, name := range s.cfg.Dapr.PubSubNames {
		m.Components = append(m.Components, component{Name: name, Type: "pubsub.jetstream", Version: "v1"})
	}
	if s.status.Subscriptions != nil {
		m.Subscriptions = s.status.Subscriptions()
	}
	if d := s.cfg.Dapr; d.AppPort > 0 {
		m.App = &appConnection{Port: d.AppPort, Protocol: d.AppProtocol, Address: d.AppHost}
	}
	problem.WriteJSON(w, http.StatusOK, m)
}
