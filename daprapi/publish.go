package daprapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventsidecar/eventsidecar/dapr"
	"github.com/eventsidecar/eventsidecar/ingress"
	"github.com/eventsidecar/eventsidecar/problem"
	"github.com/eventsidecar/eventsidecar/wire"
)

// publish is POST|PUT /v1.0/publish/{pubsub}/{topic}: the body, with the
// request's Content-Type and metadata.* query parameters, is one event;
// 204 once it is stored.
func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	pubsub, topic := pathTarget(r)
	if e := s.target(pubsub, topic); e != nil {
		dapr.WriteJSON(w, e)
		return
	}
	body, release, err := s.readBody(w, r, s.limits.MaxEventBytes)
	if err != nil {
		dapr.WriteJSON(w, s.daprError(err, pubsub, topic))
		return
	}
	defer release()
	md := dapr.FromQuery(r.URL.Query())
	if e := s.publishOne(traceContext(r), pubsub, topic, r.Header.Get("Content-Type"), body, md); e != nil {
		dapr.WriteJSON(w, e)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// publishOne stores one publish to topic in pubsub (checked by target) of
// body with contentType and metadata md, over HTTP or gRPC alike; nil
// once the broker stored it, or already held it (a resend with the same
// metadata.cloudevent.id).
func (s *Server) publishOne(ctx context.Context, pubsub, topic, contentType string, body []byte, md dapr.Metadata) *dapr.Error {
	if n := int64(len(body)); n > s.limits.MaxEventBytes {
		return s.daprError(problem.New(problem.CodeTooLarge, fmt.Sprintf("event: %d bytes, more than http.max_event_bytes (%d)", n, s.limits.MaxEventBytes)), pubsub, topic)
	}
	raw, err := md.RawPayload()
	if err != nil {
		return s.daprError(metadataError(err), pubsub, topic)
	}
	ev, err := s.event(raw, contentType, body, md)
	if err != nil {
		return s.daprError(err, pubsub, topic)
	}
	mode := wire.ModeStructured
	if raw {
		mode = wire.ModeRaw
	}
	if _, err := s.store.Store(ctx, ingress.Input{Topic: topic, Mode: mode, Events: []event.Event{ev}}); err != nil {
		return s.daprError(err, pubsub, topic)
	}
	return nil
}

// event is the event a publish of body stores: unwrapped with rawPayload
// (dapr.Raw), else wrapped by Dapr's rules (dapr.Wrap).
func (s *Server) event(raw bool, contentType string, body []byte, md dapr.Metadata) (event.Event, error) {
	if raw {
		return dapr.Raw(s.cfg.DefaultSource(), contentType, body)
	}
	return dapr.Wrap(s.cfg.AppID, contentType, body, md)
}
