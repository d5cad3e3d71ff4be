package inject

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/graceful"
)

// Bounds of the server. The API server gives a webhook at most 30 seconds.
const (
	readHeaderTimeout      = 10 * time.Second
	readTimeout            = 30 * time.Second
	writeTimeout           = 30 * time.Second
	idleTimeout            = 2 * time.Minute
	maxHeaderBytes         = 64 << 10
	defaultShutdownTimeout = 10 * time.Second
)

// Server is the injector's HTTPS server: /mutate is answered by Handler,
// GET /healthz is 200 while it serves, and GET /readyz is 200
// once it has a certificate and Ready reports nil, else 503 with the
// reason. Its fields must not change once Serve is called.
type Server struct {
	// Handler answers POST /mutate (AdmissionReview v1): NewHandler's.
	// Required.
	Handler http.Handler
	// GetCertificate returns the serving certificate, as a CertReloader's
	// or a Provisioned's does. Required.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Ready reports why the injector is not ready yet, beyond having a
	// certificate (a Provisioned's Ready). Nil: ready with a certificate.
	Ready func() error
	// ShutdownTimeout bounds the graceful shutdown once Serve's context
	// ends. Default 10 seconds.
	ShutdownTimeout time.Duration
	// Log receives the server's errors, such as failed TLS handshakes.
	// Default slog.Default().
	Log *slog.Logger
}

// Serve serves HTTPS (TLS 1.2 or later) on ln until ctx ends, then shuts
// down gracefully: in-flight requests finish within ShutdownTimeout. It
// closes ln, and returns nil after a graceful shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.Handler == nil || s.GetCertificate == nil {
		ln.Close()
		return errors.New("inject: Server needs a Handler and GetCertificate")
	}
	srv := s.httpServer()
	timeout := s.ShutdownTimeout
	if timeout <= 0 {
		timeout = defaultShutdownTimeout
	}
	serveTLS := func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
	if err := graceful.Serve(ctx, ln, timeout, serveTLS, srv.Shutdown); err != nil {
		return fmt.Errorf("inject: %w", err)
	}
	return nil
}

// httpServer is the bounded HTTPS server of s.
func (s *Server) httpServer() *http.Server {
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	return &http.Server{
		Handler: s.routes(),
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: s.GetCertificate,
		},
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// routes maps the server's paths to their handlers.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/mutate", s.Handler) // it answers other methods itself
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeProbe(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	return mux
}

// serveReady answers 200 when s is ready, else 503 with the reason.
func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	if err := s.ready(); err != nil {
		writeProbe(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
		return
	}
	writeProbe(w, http.StatusOK, "ok")
}

// ready is nil once s has a certificate and Ready reports nil.
func (s *Server) ready() error {
	cert, err := s.GetCertificate(&tls.ClientHelloInfo{})
	switch {
	case err != nil:
		return fmt.Errorf("no serving certificate: %w", err)
	case cert == nil:
		return errors.New("no serving certificate")
	case s.Ready != nil:
		return s.Ready()
	}
	return nil
}

func writeProbe(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}
