package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/problem"
)

// Mounter adds its routes to a router: the server mounts the publish
// routes (ingress.Server satisfies it) and the admin API of subscriptions
// and dead letters (egress.Admin satisfies it) this way, under /v1 and
// behind the API token, and the Dapr API (daprapi.Server) at the root.
// Its handlers must be safe for concurrent use.
type Mounter interface {
	Routes(r chi.Router)
}

// Publisher serves EventSidecar's publish RPCs (ingress.Server satisfies
// it). It must be safe for concurrent use.
type Publisher interface {
	Publish(ctx context.Context, req *eventsidecarv1.PublishRequest) (*eventsidecarv1.PublishResponse, error)
	PublishBatch(ctx context.Context, req *eventsidecarv1.PublishBatchRequest) (*eventsidecarv1.PublishBatchResponse, error)
}

// Subscriber serves the gRPC Subscribe stream (egress.Subscriber satisfies
// it): the stream's context ends, with a *problem.Error of
// problem.CodeUnavailable as its cause, when the gRPC server stops. It must
// be safe for concurrent use.
type Subscriber interface {
	Subscribe(stream SubscribeStream) error
}

// SubscribeStream is the server side of a Subscribe stream.
type SubscribeStream = grpc.BidiStreamingServer[eventsidecarv1.SubscribeRequest, eventsidecarv1.SubscribeResponse]

// Decoder decodes EventSidecar's gRPC requests (ingress.Server satisfies
// it): GRPCCodec is the gRPC server's codec, and GRPCDesc EventSidecar's
// service description whose methods decode their requests from what that
// codec hands them.
type Decoder interface {
	GRPCCodec() encoding.CodecV2
	GRPCDesc() *grpc.ServiceDesc
}

// Service is a gRPC service served next to EventSidecar (the Dapr API's,
// daprapi.Service, satisfies it): Desc is its description, and the value
// itself implements Desc().HandlerType. Its methods require the API token
// as "authorization: Bearer" or "dapr-api-token" metadata. It must be safe
// for concurrent use.
type Service interface {
	Desc() *grpc.ServiceDesc
}

// ReadyFunc reports nil when the sidecar can serve, or why it cannot.
type ReadyFunc func(ctx context.Context) error

// Handlers are what the server serves beside health, readiness and
// metrics. Every field but Ready may be nil.
type Handlers struct {
	// Publish is mounted under /v1, behind the API token.
	Publish Mounter
	// Admin is mounted under /v1 after Publish, behind the API token.
	Admin Mounter
	// Dapr is the Dapr API, mounted at the root (its routes begin with
	// /v1.0), behind the API token as Dapr takes it (see
	// authenticateDapr).
	Dapr Mounter
	// RPC serves EventSidecar's Publish and PublishBatch; nil answers
	// Unimplemented.
	RPC Publisher
	// Subscribe serves the gRPC Subscribe stream; nil answers
	// Unimplemented.
	Subscribe Subscriber
	// Services are more gRPC services, served next to EventSidecar.
	Services []Service
	// Decoder decodes EventSidecar's requests; nil for grpc's own
	// decoding.
	Decoder Decoder
	// Ready is the readiness check of /readyz and of gRPC health.
	// Required.
	Ready ReadyFunc
	// Rejected counts a request the server itself rejects (a missing or
	// wrong token, oversized headers) under its code; nil counts nothing.
	Rejected func(problem.Code)
}

// readyTimeout bounds one readiness check.
const readyTimeout = 2 * time.Second

// Server serves the HTTP API, the gRPC API and the health endpoints on the
// listeners it is given. Create it with New; it is safe for concurrent use.
type Server struct {
	cfg      config.HTTP
	h        Handlers
	gatherer prometheus.Gatherer
	log      *slog.Logger
	stopping atomic.Bool
	handler  http.Handler
}

// New returns the server of h under cfg's http.* keys (timeouts, limits,
// api_token); /metrics serves everything gatherer gathers.
func New(cfg config.HTTP, h Handlers, gatherer prometheus.Gatherer, log *slog.Logger) *Server {
	s := &Server{cfg: cfg, h: h, gatherer: gatherer, log: log}
	s.handler = s.routes()
	return s
}

func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.limitHeaders)
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	r.Route("/v1", func(r chi.Router) {
		r.Use(s.authenticate)
		for _, m := range []Mounter{s.h.Publish, s.h.Admin} {
			if m != nil {
				m.Routes(r)
			}
		}
	})
	if s.h.Dapr != nil {
		r.Group(func(r chi.Router) {
			r.Use(s.authenticateDapr)
			s.h.Dapr.Routes(r)
		})
	}
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		problem.Write(w, problem.New(problem.CodeNotFound, "no such endpoint"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, problem.New(problem.CodeMethodNotAllowed, r.Method+" is not allowed here"))
	})
	return r
}

func (s *Server) healthRoutes() http.Handler {
	r := chi.NewRouter()
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		problem.Write(w, problem.New(problem.CodeNotFound, "only /healthz and /readyz are served here"))
	})
	return r
}

// Handler is the HTTP API's http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Stopping marks the server as shutting down: /readyz answers 503 and gRPC
// health NOT_SERVING from now on.
func (s *Server) Stopping() { s.stopping.Store(true) }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	problem.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.ready(r.Context()); err != nil {
		problem.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": err.Error()})
		return
	}
	problem.WriteJSON(w, http.StatusOK, map[string]any{"ready": true})
}

// errStopping is why the server is not ready once it is shutting down.
var errStopping = errors.New("shutting down")

// ready is nil when the server is not shutting down and the readiness
// check, bounded by readyTimeout, passes.
func (s *Server) ready(ctx context.Context) error {
	if s.stopping.Load() {
		return errStopping
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	return s.h.Ready(ctx)
}

// reject counts a rejection of the server's own under code.
func (s *Server) reject(code problem.Code) {
	if s.h.Rejected != nil {
		s.h.Rejected(code)
	}
}
