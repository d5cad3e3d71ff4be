package server

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/problem"
)

// maxHeaderBytes bounds an HTTP request's line and header fields together;
// beyond it the request answers 431 problem JSON.
const maxHeaderBytes = 64 << 10

// limitHeaders answers 431 to a request whose line and header fields are
// more than maxHeaderBytes.
func (s *Server) limitHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := headerBytes(r); n > maxHeaderBytes {
			s.rejectHTTP(w, problem.New(problem.CodeHeadersTooLarge, fmt.Sprintf("headers: %d bytes with the request line, more than the limit of %d", n, maxHeaderBytes)))
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
	if s.cfg.APIToken == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.bearerOK(r.Header.Values("Authorization")) {
			s.rejectHTTP(w, problem.New(problem.CodeUnauthorized, "Authorization: Bearer token missing or wrong"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// daprTokenHeader carries the API token of Dapr's SDKs (HTTP header and
// gRPC metadata).
const daprTokenHeader = "dapr-api-token"

// daprOpenPaths are the Dapr API's paths that need no token on GET, as in
// Dapr.
var daprOpenPaths = map[string]bool{"/v1.0/healthz": true, "/v1.0/healthz/outbound": true}

// authenticateDapr requires http.api_token on the Dapr API when one is
// configured, as "dapr-api-token: <token>" (Dapr's SDKs) or
// "Authorization: Bearer <token>"; GET /v1.0/healthz and
// /v1.0/healthz/outbound are open. A request without it answers, as
// Dapr does, 401 text/plain "invalid api token".
func (s *Server) authenticateDapr(next http.Handler) http.Handler {
	if s.cfg.APIToken == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		open := r.Method == http.MethodGet && daprOpenPaths[r.URL.Path]
		if !open && !s.daprTokenOK(r.Header.Values(daprTokenHeader), r.Header.Values("Authorization")) {
			s.reject(problem.CodeUnauthorized)
			http.Error(w, "invalid api token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// daprTokenOK reports whether the dapr-api-token values are exactly one,
// the token, or, when there is none, the Authorization values pass
// bearerOK.
func (s *Server) daprTokenOK(daprToken, authorization []string) bool {
	if len(daprToken) == 1 && subtle.ConstantTimeCompare([]byte(daprToken[0]), []byte(s.cfg.APIToken)) == 1 {
		return true
	}
	return len(daprToken) == 0 && s.bearerOK(authorization)
}

// rejectHTTP counts e and writes it as a problem.
func (s *Server) rejectHTTP(w http.ResponseWriter, e *problem.Error) {
	s.reject(e.Code)
	problem.Write(w, e)
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
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(s.cfg.APIToken)) == 1
}

// authUnary requires the API token on EventSidecar's unary RPCs.
func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if err := s.authGRPC(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return next(ctx, req)
}

// authStream requires the API token on EventSidecar's streaming RPCs.
func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	if err := s.authGRPC(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return next(srv, ss)
}

// authGRPC requires the API token, when one is configured, on
// EventSidecar's methods as "authorization: Bearer <http.api_token>"
// metadata, and on the other registered services' methods as that or
// "dapr-api-token: <http.api_token>"; health and reflection are open.
func (s *Server) authGRPC(ctx context.Context, method string) error {
	if s.cfg.APIToken == "" {
		return nil
	}
	service, _, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	md, _ := metadata.FromIncomingContext(ctx)
	switch {
	case service == eventsidecarv1.EventSidecar_ServiceDesc.ServiceName:
		if s.bearerOK(md.Get("authorization")) {
			return nil
		}
		s.reject(problem.CodeUnauthorized)
		return problem.GRPCStatus(problem.New(problem.CodeUnauthorized, "authorization: Bearer token missing or wrong"))
	case s.registered(service):
		if s.daprTokenOK(md.Get(daprTokenHeader), md.Get("authorization")) {
			return nil
		}
		s.reject(problem.CodeUnauthorized)
		return status.Error(codes.Unauthenticated, "invalid api token")
	}
	return nil
}

// registered reports whether service is one of Handlers.Services.
func (s *Server) registered(service string) bool {
	for _, svc := range s.h.Services {
		if svc.Desc().ServiceName == service {
			return true
		}
	}
	return false
}
