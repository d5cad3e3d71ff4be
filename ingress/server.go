package ingress

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
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

// Mounter adds its routes to a router: ingress mounts the admin API of
// subscriptions and dead letters (egress.Admin satisfies it) this way,
// under /v1 and behind the API token. Its handlers must be safe for
// concurrent use.
type Mounter interface {
	Routes(r chi.Router)
}

// Subscriber serves the gRPC Subscribe stream (egress.Subscriber satisfies
// it): the stream's context ends, with a *problem.Error of
// problem.CodeUnavailable as its cause, when the gRPC server stops. It must
// be safe for concurrent use.
type Subscriber interface {
	Subscribe(stream grpc.BidiStreamingServer[eventsidecarv1.SubscribeRequest, eventsidecarv1.SubscribeResponse]) error
}

// ReadyFunc reports nil when the sidecar can serve, or why it cannot.
type ReadyFunc func(ctx context.Context) error

// readyTimeout bounds one readiness check.
const readyTimeout = 2 * time.Second

// maxHeaderBytes bounds an HTTP request's line and header fields together;
// beyond it the request answers 431 problem JSON.
const maxHeaderBytes = 64 << 10

// hardHeaderBytes is net/http's MaxHeaderBytes: beyond it (plus 4 KiB
// net/http allows on top) net/http answers a plain-text 431 before any
// handler runs. It lies far above maxHeaderBytes, so that the requests
// between the two get problem JSON.
const hardHeaderBytes = 1 << 20

// Server is the HTTP API. Create it with New; it is safe for concurrent use.
type Server struct {
	cfg      config.Config
	pub      Publisher
	admin    Mounter
	sub      Subscriber
	ready    ReadyFunc
	metrics  *metrics
	gatherer prometheus.Gatherer
	log      *slog.Logger
	stopping atomic.Bool
	handler  http.Handler
	// bodies is the budget of request bytes held by publishes in progress.
	bodies *semaphore.Weighted
}

// New returns the HTTP and gRPC API over pub (publishing), admin (routes
// mounted under /v1; nil for none) and sub (gRPC Subscribe; nil answers
// Unimplemented). Its metrics are registered on reg and /metrics serves
// everything reg gathers.
func New(cfg config.Config, pub Publisher, admin Mounter, sub Subscriber, ready ReadyFunc,
	reg *prometheus.Registry, log *slog.Logger) (*Server, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, pub: pub, admin: admin, sub: sub, ready: ready, metrics: m, gatherer: reg, log: log,
		bodies: semaphore.NewWeighted(cfg.HTTP.MaxInFlightBytes)}
	s.handler = s.routes()
	return s, nil
}

func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.limitHeaders)
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	r.Route("/v1", func(r chi.Router) {
		r.Use(s.authenticate)
		r.Post("/publish/{topic}", s.publish)
		if s.admin != nil {
			s.admin.Routes(r)
		}
	})
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		problem.Write(w, problem.New(problem.CodeNotFound, "no such endpoint"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, problem.New(problem.CodeMethodNotAllowed, r.Method+" is not allowed here"))
	})
	return r
}

// Handler is the API's http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Stopping marks the server as shutting down: /readyz answers 503 from now on.
func (s *Server) Stopping() { s.stopping.Store(true) }

// Serve serves on ln until ctx ends, then marks the server not ready and
// shuts down gracefully: no new connections, in-flight requests (and the
// publishes they wait for) finish within http.shutdown_timeout. A request
// whose line and headers exceed 64 KiB answers 431 problem JSON (beyond
// 1 MiB net/http answers a plain-text 431 itself); a body that has not
// arrived within http.read_timeout answers 408.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln, s.handler)
}

// ServeHealth serves only /healthz and /readyz on ln (http.health_listen)
// until ctx ends, so that probes from outside the pod reach them while the
// API stays on loopback.
func (s *Server) ServeHealth(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln, s.healthRoutes())
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

func (s *Server) serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	hc := s.cfg.HTTP
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(10*time.Second, hc.ReadTimeout),
		ReadTimeout:       hc.ReadTimeout,
		WriteTimeout:      hc.WriteTimeout,
		IdleTimeout:       hc.IdleTimeout,
		MaxHeaderBytes:    hardHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("ingress: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.Stopping()
	sctx, cancel := context.WithTimeout(context.Background(), hc.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("ingress: shut down: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ingress: serve %s: %w", ln.Addr(), err)
	}
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	problem.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.stopping.Load() {
		problem.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": "shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		problem.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": err.Error()})
		return
	}
	problem.WriteJSON(w, http.StatusOK, map[string]any{"ready": true})
}

// limitHeaders answers 431 to a request whose line and header fields are
// more than maxHeaderBytes.
func (s *Server) limitHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := headerBytes(r); n > maxHeaderBytes {
			s.reject(w, problem.New(problem.CodeHeadersTooLarge, fmt.Sprintf("headers: %d bytes with the request line, more than the limit of %d", n, maxHeaderBytes)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// headerBytes is the size of r's request line and header fields as HTTP/1.1
// sends them.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(" ") + len(r.RequestURI) + len(" ") + len(r.Proto) + len("\r\n")
	n += len("Host: \r\n") + len(r.Host)
	for name, values := range r.Header {
		for _, v := range values {
			n += len(name) + len(v) + len(": \r\n")
		}
	}
	return n
}

// authenticate requires "Authorization: Bearer <http.api_token>" when a
// token is configured.
func (s *Server) authenticate(next http.Handler) http.Handler {
	if s.cfg.HTTP.APIToken == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.bearerOK(r.Header.Values("Authorization")) {
			s.reject(w, problem.New(problem.CodeUnauthorized, "Authorization: Bearer token missing or wrong"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearerOK reports whether the Authorization values (HTTP header or gRPC
// metadata) are exactly one "Bearer <http.api_token>", compared in
// constant time.
func (s *Server) bearerOK(values []string) bool {
	if len(values) != 1 {
		return false
	}
	scheme, got, ok := strings.Cut(values[0], " ")
	return ok && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(s.cfg.HTTP.APIToken)) == 1
}
