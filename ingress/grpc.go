package ingress

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/dedup"
	"github.com/eventsidecar/eventsidecar/problem"
)

// ServeGRPC serves the gRPC API (EventSidecar, grpc.health.v1.Health,
// reflection) on ln until ctx ends; a malformed request answers
// InvalidArgument (see frameCodec). It then stops gracefully: health answers
// NOT_SERVING, Subscribe streams are told to end at once (their context
// ends with an Unavailable problem as its cause; the Subscriber hands their
// unanswered deliveries back), no new RPCs are accepted, and RPCs in
// progress finish within http.shutdown_timeout, after which they are
// cancelled. It is safe to call alongside Serve.
func (s *Server) ServeGRPC(ctx context.Context, ln net.Listener) error {
	health := &grpcHealth{s: s}
	streams, endStreams := context.WithCancel(context.Background())
	defer endStreams()
	srv := grpc.NewServer(
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.MaxRecvMsgSize(int(s.cfg.HTTP.MaxBatchBytes)),
		grpc.ForceServerCodecV2(newFrameCodec()),
		grpc.ChainUnaryInterceptor(s.authUnary),
		grpc.ChainStreamInterceptor(s.authStream),
	)
	srv.RegisterService(s.eventSidecarDesc(), &grpcAPI{s: s, sub: s.sub, streams: streams})
	grpc_health_v1.RegisterHealthServer(srv, health)
	reflection.Register(srv)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("ingress: serve gRPC %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	health.down.Store(true)
	endStreams()
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(s.cfg.HTTP.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		srv.Stop()
		<-stopped
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("ingress: serve gRPC %s: %w", ln.Addr(), err)
	}
	return nil
}

// grpcAPI is the EventSidecar service over a Server.
type grpcAPI struct {
	eventsidecarv1.UnimplementedEventSidecarServer
	s   *Server
	sub Subscriber
	// streams ends when the server stops: Subscribe streams end with it.
	streams context.Context
}

type subscribeStream = grpc.BidiStreamingServer[eventsidecarv1.SubscribeRequest, eventsidecarv1.SubscribeResponse]

// Subscribe hands the stream to the Subscriber, with a context that also
// ends when the server stops, its cause an Unavailable problem.
func (g *grpcAPI) Subscribe(stream subscribeStream) error {
	if g.sub == nil {
		return g.UnimplementedEventSidecarServer.Subscribe(stream)
	}
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	defer context.AfterFunc(g.streams, func() {
		cancel(problem.New(problem.CodeUnavailable, "the sidecar is shutting down"))
	})()
	return g.sub.Subscribe(stoppingStream{subscribeStream: stream, ctx: ctx})
}

// stoppingStream is a Subscribe stream whose context ends when the server
// stops.
type stoppingStream struct {
	subscribeStream
	ctx context.Context
}

// Context is the stream's context, ended also when the server stops.
func (s stoppingStream) Context() context.Context { return s.ctx }

// Publish stores one event through the shared publish path.
func (g *grpcAPI) Publish(ctx context.Context, req *eventsidecarv1.PublishRequest) (*eventsidecarv1.PublishResponse, error) {
	in := Input{Topic: req.GetTopic(), Mode: ModeStructured}
	if req.GetIdempotencyKey() != "" {
		key, err := dedup.ParseKey(req.GetIdempotencyKey())
		if err != nil {
			return nil, g.s.grpcReject(problem.New(problem.CodeInvalid, "idempotency_key: "+err.Error()))
		}
		in.Key = key
	}
	if req.GetEvent() == nil {
		return nil, g.s.grpcReject(problem.New(problem.CodeInvalid, "event: required"))
	}
	results, err := g.s.storeGRPC(ctx, in, []*pb.CloudEvent{req.GetEvent()}, proto.Size(req))
	if err != nil {
		return nil, err
	}
	r := results[0]
	return &eventsidecarv1.PublishResponse{Topic: r.Topic, Id: r.ID, Source: r.Source, Sequence: r.Sequence, Duplicate: r.Duplicate}, nil
}

// PublishBatch stores a batch, all or nothing, through the shared publish path.
func (g *grpcAPI) PublishBatch(ctx context.Context, req *eventsidecarv1.PublishBatchRequest) (*eventsidecarv1.PublishBatchResponse, error) {
	in := Input{Topic: req.GetTopic(), Mode: ModeBatch}
	results, err := g.s.storeGRPC(ctx, in, req.GetEvents(), proto.Size(req))
	if err != nil {
		return nil, err
	}
	resp := &eventsidecarv1.PublishBatchResponse{Results: make([]*eventsidecarv1.PublishResult, len(results))}
	for i, r := range results {
		resp.Results[i] = &eventsidecarv1.PublishResult{Id: r.ID, Source: r.Source, Sequence: r.Sequence, Duplicate: r.Duplicate}
	}
	return resp, nil
}

// storeGRPC holds size bytes of the in-flight budget, converts the events
// and stores them; errors are gRPC statuses.
func (s *Server) storeGRPC(ctx context.Context, in Input, events []*pb.CloudEvent, size int) ([]Result, error) {
	start := time.Now()
	release, err := s.takeBodies(int64(size))
	if err != nil {
		return nil, s.grpcReject(err)
	}
	defer release()
	if in.Events, err = s.fromProto(in.Mode, events); err != nil {
		return nil, s.grpcReject(err)
	}
	results, err := s.Store(ctx, in)
	if err != nil {
		return nil, s.grpcReject(err)
	}
	s.metrics.latency.WithLabelValues(in.Mode.String()).Observe(time.Since(start).Seconds())
	return results, nil
}

// fromProto converts protobuf events (DecodeProto) with the same limits as
// HTTP bodies. A single event's error names the attribute; a batch's names
// the entries.
func (s *Server) fromProto(mode Mode, pbs []*pb.CloudEvent) ([]event.Event, error) {
	if mode == ModeBatch && len(pbs) == 0 {
		return nil, problem.New(problem.CodeInvalid, "events: the batch is empty")
	}
	if mode == ModeBatch && len(pbs) > s.cfg.HTTP.MaxBatchEvents {
		return nil, problem.New(problem.CodeTooLarge, fmt.Sprintf("events: more than http.max_batch_events (%d) events", s.cfg.HTTP.MaxBatchEvents))
	}
	events := make([]event.Event, len(pbs))
	var items []problem.ItemError
	tooLarge := false
	for i, p := range pbs {
		if n := int64(proto.Size(p)); n > s.cfg.HTTP.MaxEventBytes {
			items = append(items, problem.ItemError{Index: i, Detail: fmt.Sprintf("%d bytes, more than http.max_event_bytes (%d)", n, s.cfg.HTTP.MaxEventBytes)})
			tooLarge = true
			continue
		}
		ev, err := DecodeProto(p)
		if err != nil {
			items = append(items, problem.ItemError{Index: i, Detail: err.Error()})
			continue
		}
		events[i] = ev
	}
	if len(items) == 0 {
		return events, nil
	}
	code := problem.CodeInvalid
	if tooLarge && len(items) == 1 {
		code = problem.CodeTooLarge
	}
	if mode != ModeBatch && tooLarge {
		return nil, problem.New(code, "event: "+items[0].Detail)
	}
	if mode != ModeBatch {
		return nil, problem.New(code, items[0].Detail)
	}
	return nil, &problem.Error{Code: code, Detail: fmt.Sprintf("batch: %d of %d entries are invalid; nothing was stored", len(items), len(pbs)), Items: items}
}

// grpcReject counts err in the rejection metrics and returns its status.
func (s *Server) grpcReject(err error) error {
	s.count(err)
	return problem.GRPCStatus(err)
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

// authGRPC requires "authorization: Bearer <http.api_token>" metadata on
// EventSidecar's methods when a token is configured; health and reflection
// are open.
func (s *Server) authGRPC(ctx context.Context, method string) error {
	if s.cfg.HTTP.APIToken == "" || !strings.HasPrefix(method, "/"+eventsidecarv1.EventSidecar_ServiceDesc.ServiceName+"/") {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if s.bearerOK(md.Get("authorization")) {
		return nil
	}
	return s.grpcReject(problem.New(problem.CodeUnauthorized, "authorization: Bearer token missing or wrong"))
}

// grpcHealth is grpc.health.v1.Health answering from the readiness check on
// each Check; Watch and List are not implemented.
type grpcHealth struct {
	grpc_health_v1.UnimplementedHealthServer
	s *Server
	// down is set once the gRPC server is shutting down.
	down atomic.Bool
}

// Check answers SERVING when the sidecar is ready, for the whole server ("")
// or the EventSidecar service.
func (h *grpcHealth) Check(ctx context.Context, req *grpc_health_v1.HealthCheckRequest) (*grpc_health_v1.HealthCheckResponse, error) {
	if svc := req.GetService(); svc != "" && svc != eventsidecarv1.EventSidecar_ServiceDesc.ServiceName {
		return nil, status.Errorf(codes.NotFound, "unknown service %q", svc)
	}
	resp := &grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_NOT_SERVING}
	if h.down.Load() || h.s.stopping.Load() {
		return resp, nil
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if h.s.ready(ctx) == nil {
		resp.Status = grpc_health_v1.HealthCheckResponse_SERVING
	}
	return resp, nil
}
