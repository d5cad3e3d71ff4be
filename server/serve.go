package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/graceful"
)

// hardHeaderBytes is net/http's MaxHeaderBytes: beyond it (plus 4 KiB
// net/http allows on top) net/http answers a plain-text 431 before any
// handler runs. It lies far above maxHeaderBytes, so that the requests
// between the two get problem JSON.
const hardHeaderBytes = 1 << 20

// Serve serves the HTTP API on ln until ctx ends, then shuts down as
// every listener does (see serve): in-flight requests (and the publishes
// they wait for) finish within http.shutdown_timeout. A request whose line
// and headers exceed 64 KiB answers 431 problem JSON (beyond 1 MiB
// net/http answers a plain-text 431 itself); a body that has not arrived
// within http.read_timeout answers 408.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.serveHTTP(ctx, "http", ln, s.handler)
}

// ServeHealth serves only /healthz and /readyz on ln (http.health_listen)
// until ctx ends, so that probes from outside the pod reach them while the
// API stays on loopback.
func (s *Server) ServeHealth(ctx context.Context, ln net.Listener) error {
	return s.serveHTTP(ctx, "health", ln, s.healthRoutes())
}

func (s *Server) serveHTTP(ctx context.Context, name string, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(10*time.Second, s.cfg.ReadTimeout),
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    hardHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	return s.serve(ctx, name, ln, srv.Serve, srv.Shutdown)
}

// serve is every listener's serve-then-shutdown (graceful.Serve): it runs
// run(ln) until ctx ends, then marks the server not ready and calls
// shutdown, which has http.shutdown_timeout to stop gracefully.
func (s *Server) serve(ctx context.Context, name string, ln net.Listener, run func(net.Listener) error, shutdown func(context.Context) error) error {
	err := graceful.Serve(ctx, ln, s.cfg.ShutdownTimeout, run, func(ctx context.Context) error {
		s.Stopping()
		return shutdown(ctx)
	})
	if err != nil {
		return fmt.Errorf("server: %s: %w", name, err)
	}
	return nil
}
