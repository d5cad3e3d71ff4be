package server

import (
	"context"
	"net"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/problem"
)

// ServeGRPC serves the gRPC API (EventSidecar, the Handlers' Services,
// grpc.health.v1.Health, reflection) on ln until ctx ends; a request is at most
// http.max_batch_bytes, and the Decoder decodes EventSidecar's. It then
// stops gracefully: health answers NOT_SERVING, Subscribe streams are told
// to end at once (their context ends with an Unavailable problem as its
// cause; the Subscriber hands their unanswered deliveries back), no new
// RPCs are accepted, and RPCs in progress finish within
// http.shutdown_timeout, after which they are cancelled. It is safe to
// call alongside Serve.
func (s *Server) ServeGRPC(ctx context.Context, ln net.Listener) error {
	streams, endStreams := context.WithCancel(context.Background())
	defer endStreams()
	opts := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.MaxRecvMsgSize(int(s.cfg.MaxBatchBytes)),
		grpc.ChainUnaryInterceptor(s.authUnary),
		grpc.ChainStreamInterceptor(s.authStream),
	}
	desc := &eventsidecarv1.EventSidecar_ServiceDesc
	if s.h.Decoder != nil {
		opts = append(opts, grpc.ForceServerCodecV2(s.h.Decoder.GRPCCodec()))
		desc = s.h.Decoder.GRPCDesc()
	}
	srv := grpc.NewServer(opts...)
	srv.RegisterService(desc, &eventSidecar{pub: s.h.RPC, sub: s.h.Subscribe, streams: streams})
	for _, svc := range s.h.Services {
		srv.RegisterService(svc.Desc(), svc)
	}
	grpc_health_v1.RegisterHealthServer(srv, &grpcHealth{s: s})
	reflection.Register(srv)
	return s.serve(ctx, "gRPC", ln, srv.Serve, func(ctx context.Context) error {
		endStreams()
		stopGRPC(ctx, srv)
		return nil
	})
}

// stopGRPC stops srv gracefully, or at once when ctx ends first.
func stopGRPC(ctx context.Context, srv *grpc.Server) {
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		srv.Stop()
		<-stopped
	}
}

// eventSidecar is the EventSidecar service: Publish and PublishBatch from
// the Publisher, Subscribe from the Subscriber; a nil one answers
// Unimplemented.
type eventSidecar struct {
	eventsidecarv1.UnimplementedEventSidecarServer
	pub Publisher
	sub Subscriber
	// streams ends when the server stops: Subscribe streams end with it.
	streams context.Context
}

// Publish hands the request to the Publisher.
func (e *eventSidecar) Publish(ctx context.Context, req *eventsidecarv1.PublishRequest) (*eventsidecarv1.PublishResponse, error) {
	if e.pub == nil {
		return e.UnimplementedEventSidecarServer.Publish(ctx, req)
	}
	return e.pub.Publish(ctx, req)
}

// PublishBatch hands the request to the Publisher.
func (e *eventSidecar) PublishBatch(ctx context.Context, req *eventsidecarv1.PublishBatchRequest) (*eventsidecarv1.PublishBatchResponse, error) {
	if e.pub == nil {
		return e.UnimplementedEventSidecarServer.PublishBatch(ctx, req)
	}
	return e.pub.PublishBatch(ctx, req)
}

// Subscribe hands the stream to the Subscriber, with a context that also
// ends when the server stops, its cause an Unavailable problem.
func (e *eventSidecar) Subscribe(stream SubscribeStream) error {
	if e.sub == nil {
		return e.UnimplementedEventSidecarServer.Subscribe(stream)
	}
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	defer context.AfterFunc(e.streams, func() {
		cancel(problem.New(problem.CodeUnavailable, "the sidecar is shutting down"))
	})()
	return e.sub.Subscribe(stoppingStream{SubscribeStream: stream, ctx: ctx})
}

// stoppingStream is a Subscribe stream whose context ends when the server
// stops.
type stoppingStream struct {
	SubscribeStream
	ctx context.Context
}

// Context is the stream's context, ended also when the server stops.
func (s stoppingStream) Context() context.Context { return s.ctx }

// grpcHealth is grpc.health.v1.Health answering from the readiness check on
// each Check; Watch and List are not implemented.
type grpcHealth struct {
	grpc_health_v1.UnimplementedHealthServer
	s *Server
}

// Check answers SERVING when the sidecar is ready, for the whole server ("")
// or the EventSidecar service.
func (h *grpcHealth) Check(ctx context.Context, req *grpc_health_v1.HealthCheckRequest) (*grpc_health_v1.HealthCheckResponse, error) {
	if svc := req.GetService(); svc != "" && svc != eventsidecarv1.EventSidecar_ServiceDesc.ServiceName {
		return nil, status.Errorf(codes.NotFound, "unknown service %q", svc)
	}
	resp := &grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_NOT_SERVING}
	if h.s.ready(ctx) == nil {
		resp.Status = grpc_health_v1.HealthCheckResponse_SERVING
	}
	return resp, nil
}
