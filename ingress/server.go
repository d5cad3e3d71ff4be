package ingress

import (
	"context"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/problem"
)

// Publisher stores events durably and answers for each once the broker has
// acknowledged it (or failed to). *broker.Client satisfies it. It must be
// safe for concurrent use.
type Publisher interface {
	Publish(ctx context.Context, msgs []broker.Message) []broker.Receipt
}

// Server is the publish path, over HTTP (Routes) and gRPC (Publish and
// PublishBatch); a server of package server serves it. Create it with New;
// it is safe for concurrent use.
type Server struct {
	cfg     config.Config
	limits  config.Limits
	pub     Publisher
	metrics *metrics
	// bodies is the budget of request bytes held by publishes in progress.
	bodies *semaphore.Weighted
}

// New returns the publish path over pub, bounded by cfg.Limits() over HTTP
// and gRPC alike. Its metrics are registered on reg.
func New(cfg config.Config, pub Publisher, reg prometheus.Registerer) (*Server, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, limits: cfg.Limits(), pub: pub, metrics: m, bodies: semaphore.NewWeighted(cfg.HTTP.MaxInFlightBytes)}, nil
}

// Routes adds the publish route, POST /publish/{topic}, to r.
func (s *Server) Routes(r chi.Router) {
	r.Post("/publish/{topic}", s.publish)
}

// Rejected counts a publish request rejected before it reached the
// publish path (a missing or wrong token, oversized headers) under code,
// as the publish path counts its own rejections.
func (s *Server) Rejected(code problem.Code) {
	s.metrics.rejected.WithLabelValues(code.Slug()).Inc()
}
