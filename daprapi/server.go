package daprapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dapr"
	"github.com/eventsidecar/eventsidecar/ingress"
	"github.com/eventsidecar/eventsidecar/problem"
)

// Storer stores decoded publishes through the sidecar's publish path:
// topic and scope checks, validation, limits, idempotency and the
// broker's acknowledgement (see ingress.Server.Store, which satisfies
// it). Its errors are *problem.Error. It must be safe for concurrent use.
type Storer interface {
	Store(ctx context.Context, in ingress.Input) ([]ingress.Result, error)
	// ReadBody reads an HTTP request's body within the in-flight byte
	// budget all publishes share, until release is called.
	ReadBody(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, release func(), err error)
	// Hold holds n bytes of that budget for a gRPC request, until
	// release is called.
	Hold(n int64) (release func(), err error)
}

// Status is what the health and metadata endpoints report.
type Status struct {
	// Ready returns nil when the sidecar can serve (GET /v1.0/healthz),
	// else why not. Required.
	Ready func(ctx context.Context) error
	// Outbound returns nil once the broker is connected (GET
	// /v1.0/healthz/outbound), else why not. Required.
	Outbound func(ctx context.Context) error
	// Subscriptions lists the Dapr subscriptions whose consumer exists,
	// for GET /v1.0/metadata; nil lists none. It must be safe for
	// concurrent use.
	Subscriptions func() []Subscription
}

// Server is the Dapr API over a Storer: HTTP (Routes) and gRPC
// (Service). Create it with New; it is safe for concurrent use.
type Server struct {
	cfg     config.Config
	limits  config.Limits
	pubsubs map[string]bool
	store   Storer
	status  Status
}

// New returns the Dapr API of the app cfg.AppID for the pub/sub names
// cfg.Dapr.PubSubNames, bounded by cfg.Limits() and http.max_batch_bytes,
// storing through store and reporting status.
func New(cfg config.Config, store Storer, status Status) *Server {
	pubsubs := make(map[string]bool, len(cfg.Dapr.PubSubNames))
	for _, name := range cfg.Dapr.PubSubNames {
		pubsubs[name] = true
	}
	return &Server{cfg: cfg, limits: cfg.Limits(), pubsubs: pubsubs, store: store, status: status}
}

// unimplementedPattern matches the Dapr API versions other than v1.0 and
// v1.0-alpha1 (v1.0-beta1, v1.0-alpha2, ...).
const unimplementedPattern = `/{version:v1\.0-[a-z]+[0-9]+}/*`

// Routes adds the Dapr API to r, at Dapr's paths: POST and PUT
// /v1.0/publish/{pubsub}/{topic}, /v1.0-alpha1/publish/bulk/{pubsub}/{topic}
// and /v1.0/publish/bulk/{pubsub}/{topic}; GET /v1.0/healthz,
// /v1.0/healthz/outbound and /v1.0/metadata. Every other request under
// /v1.0 and its alpha and beta versions answers 501
// ERR_API_UNIMPLEMENTED. r's middleware (the API token) applies to all.
func (s *Server) Routes(r chi.Router) {
	r.Route("/v1.0", func(r chi.Router) {
		for _, m := range []string{http.MethodPost, http.MethodPut} {
			r.Method(m, "/publish/bulk/{pubsub}/*", http.HandlerFunc(s.bulk))
			r.Method(m, "/publish/{pubsub}/*", http.HandlerFunc(s.publish))
		}
		r.Get("/healthz", s.healthz)
		r.Get("/healthz/outbound", s.outbound)
		r.Get("/metadata", s.metadata)
		unimplementedElse(r)
	})
	r.Route("/v1.0-alpha1", func(r chi.Router) {
		for _, m := range []string{http.MethodPost, http.MethodPut} {
			r.Method(m, "/publish/bulk/{pubsub}/*", http.HandlerFunc(s.bulk))
		}
		unimplementedElse(r)
	})
	r.HandleFunc(unimplementedPattern, unimplemented)
}

// unimplementedElse makes every other request to r answer 501.
func unimplementedElse(r chi.Router) {
	r.NotFound(unimplemented)
	r.MethodNotAllowed(unimplemented)
}

func unimplemented(w http.ResponseWriter, _ *http.Request) {
	dapr.WriteJSON(w, &dapr.Error{Code: dapr.CodeUnimplemented})
}

// target checks a publish's pub/sub and topic in Dapr's order (pub/sub
// configured, named, known; topic named), then the topic's syntax
// (contract §3; Dapr's topics may hold "/", the sidecar's may not).
func (s *Server) target(pubsub, topic string) *dapr.Error {
	e := &dapr.Error{PubSub: pubsub, Topic: topic}
	switch {
	case len(s.pubsubs) == 0:
		e.Code = dapr.CodeNotConfigured
	case pubsub == "":
		e.Code = dapr.CodeNameEmpty
	case !s.pubsubs[pubsub]:
		e.Code = dapr.CodeNotFound
	case topic == "":
		e.Code = dapr.CodeTopicEmpty
	default:
		err := config.ValidTopic(topic)
		if err == nil {
			return nil
		}
		e.Code, e.Cause = dapr.CodeMalformedTopic, err.Error()
	}
	return e
}

// daprError is err as the Dapr answer of a publish to topic in pubsub: a
// *dapr.Error as it is, naming pubsub, topic and the app; else the
// publish path's error (see dapr.FromProblem).
func (s *Server) daprError(err error, pubsub, topic string) *dapr.Error {
	var e *dapr.Error
	if !errors.As(err, &e) {
		return dapr.FromProblem(err, pubsub, topic, s.cfg.AppID)
	}
	e.PubSub, e.Topic, e.AppID = pubsub, topic, s.cfg.AppID
	return e
}

// metadataError is a bad metadata value (rawPayload, ttl).
func metadataError(err error) *dapr.Error {
	return &dapr.Error{Code: dapr.CodeRequestMetadata, Cause: err.Error()}
}

// readBody reads a request body of at most limit bytes, holding its room
// in the in-flight budget all publishes share until release is called.
// Its errors are the publish path's: 413 beyond the limit, 429 without
// room in the budget, 408 when the body did not
// arrive within http.read_timeout, and any other read error is a failed
// publish (500), as in Dapr.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, func(), error) {
	body, release, err := s.store.ReadBody(w, r, limit)
	if err == nil {
		return body, release, nil
	}
	if p := problem.From(err); p.Code == problem.CodeInvalid {
		return nil, nil, &dapr.Error{Code: dapr.CodePublish, Cause: p.Detail}
	}
	return nil, nil, err
}

// traceContext is the request's context with the trace context of its
// traceparent and tracestate headers.
func traceContext(r *http.Request) context.Context {
	return otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
}

// pathTarget is the pub/sub and topic a request's path names.
func pathTarget(r *http.Request) (pubsub, topic string) {
	return chi.URLParam(r, "pubsub"), chi.URLParam(r, "*")
}
