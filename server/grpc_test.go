package server_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/apitest"
	"github.com/eventsidecar/eventsidecar/problem"
	"github.com/eventsidecar/eventsidecar/server"
)

// rpcs serves Publish and PublishBatch as the publish path does
// (ingress.Server serves them for real, and has their tests): it counts
// the calls that reach it and answers at once, or, when hold is set,
// once the call's context ends.
type rpcs struct {
	reached atomic.Int64
	hold    bool
	// arrived, when set, gets a value for every call that reached it.
	arrived chan struct{}
}

var _ server.Publisher = (*rpcs)(nil)

func (p *rpcs) Publish(ctx context.Context, req *eventsidecarv1.PublishRequest) (*eventsidecarv1.PublishResponse, error) {
	p.reached.Add(1)
	if p.arrived != nil {
		p.arrived <- struct{}{}
	}
	if p.hold {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return &eventsidecarv1.PublishResponse{Topic: req.GetTopic(), Id: req.GetEvent().GetId()}, nil
}

func (p *rpcs) PublishBatch(context.Context, *eventsidecarv1.PublishBatchRequest) (*eventsidecarv1.PublishBatchResponse, error) {
	p.reached.Add(1)
	return &eventsidecarv1.PublishBatchResponse{}, nil
}

// subscriber serves Subscribe as egress.Subscriber (which has the tests
// of the stream itself) does where the server's part shows: NotFound for
// a start naming another subscription than "orders", else Started, and
// once the stream's context ends, the status of its cause.
type subscriber struct{}

var _ server.Subscriber = subscriber{}

func (subscriber) Subscribe(stream server.SubscribeStream) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	if name := req.GetStart().GetSubscription(); name != "orders" {
		return problem.GRPCStatus(problem.New(problem.CodeNotFound, "unknown subscription "+name))
	}
	err = stream.Send(&eventsidecarv1.SubscribeResponse{Response: &eventsidecarv1.SubscribeResponse_Started_{
		Started: &eventsidecarv1.SubscribeResponse_Started{Subscription: "orders"}}})
	if err != nil {
		return err
	}
	<-stream.Context().Done()
	return problem.GRPCStatus(context.Cause(stream.Context()))
}

// dial serves s's gRPC API until the test ends and returns a client
// connection to it, and stop (see serve).
func dial(t *testing.T, s *testServer) (*grpc.ClientConn, func() error) {
	t.Helper()
	addr, stop := serve(t, s.api.ServeGRPC)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, stop
}

func rpcCtx(t *testing.T, kv ...string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// startStream opens a Subscribe stream on conn and sends a start naming
// subscription.
func startStream(t *testing.T, ctx context.Context, conn *grpc.ClientConn, subscription string) grpc.BidiStreamingClient[eventsidecarv1.SubscribeRequest, eventsidecarv1.SubscribeResponse] {
	t.Helper()
	stream, err := eventsidecarv1.NewEventSidecarClient(conn).Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Start_{
		Start: &eventsidecarv1.SubscribeRequest_Start{Subscription: subscription}}})
	return stream
}

func TestGRPCToken(t *testing.T) {
	pub := &rpcs{}
	s := newServer(t, func(c *config.HTTP) { c.APIToken = "s3cret" }, server.Handlers{RPC: pub, Subscribe: subscriber{}})
	conn, _ := dial(t, s)
	client := eventsidecarv1.NewEventSidecarClient(conn)
	tests := []struct {
		name string
		md   []string
		code codes.Code
	}{
		{"missing", nil, codes.Unauthenticated},
		{"wrong", []string{"authorization", "Bearer nope"}, codes.Unauthenticated},
		{"wrong scheme", []string{"authorization", "Basic s3cret"}, codes.Unauthenticated},
		{"right", []string{"authorization", "Bearer s3cret"}, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.Publish(rpcCtx(t, tt.md...), &eventsidecarv1.PublishRequest{Topic: "a"})
			apitest.WantCode(t, err, tt.code)
			_, err = startStream(t, rpcCtx(t, tt.md...), conn, "nope").Recv()
			want, wantRejected := tt.code, []problem.Code{problem.CodeUnauthorized, problem.CodeUnauthorized}
			if want == codes.OK {
				want, wantRejected = codes.NotFound, nil // past the token check
			}
			apitest.WantCode(t, err, want)
			if got := s.rejected.take(); !slices.Equal(got, wantRejected) {
				t.Errorf("rejections counted = %v, want %v", got, wantRejected)
			}
		})
	}
	if n := pub.reached.Load(); n != 1 {
		t.Errorf("publishes reached = %d, want 1", n)
	}
	resp, err := grpc_health_v1.NewHealthClient(conn).Check(rpcCtx(t), &grpc_health_v1.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		t.Errorf("health without token = %v, %v; want SERVING", resp, err)
	}
}

func TestGRPCWithoutHandlersIsUnimplemented(t *testing.T) {
	conn, _ := dial(t, newServer(t, nil, server.Handlers{}))
	client := eventsidecarv1.NewEventSidecarClient(conn)
	_, err := client.Publish(rpcCtx(t), &eventsidecarv1.PublishRequest{Topic: "a"})
	apitest.WantCode(t, err, codes.Unimplemented)
	_, err = client.PublishBatch(rpcCtx(t), &eventsidecarv1.PublishBatchRequest{Topic: "a"})
	apitest.WantCode(t, err, codes.Unimplemented)
	_, err = startStream(t, rpcCtx(t), conn, "orders").Recv()
	apitest.WantCode(t, err, codes.Unimplemented)
}

func TestGRPCDelegates(t *testing.T) {
	pub := &rpcs{}
	conn, _ := dial(t, newServer(t, nil, server.Handlers{RPC: pub}))
	client := eventsidecarv1.NewEventSidecarClient(conn)
	if _, err := client.Publish(rpcCtx(t), &eventsidecarv1.PublishRequest{Topic: "a"}); err != nil {
		t.Errorf("Publish: %v", err)
	}
	if _, err := client.PublishBatch(rpcCtx(t), &eventsidecarv1.PublishBatchRequest{Topic: "a"}); err != nil {
		t.Errorf("PublishBatch: %v", err)
	}
	if n := pub.reached.Load(); n != 2 {
		t.Errorf("calls reached = %d, want 2", n)
	}
}

func TestGRPCHealthAndReflection(t *testing.T) {
	var notReady atomic.Bool
	s := newServer(t, nil, server.Handlers{Ready: func(context.Context) error {
		if notReady.Load() {
			return errNotReady
		}
		return nil
	}})
	conn, _ := dial(t, s)
	health := grpc_health_v1.NewHealthClient(conn)
	for _, svc := range []string{"", "eventsidecar.v1.EventSidecar"} {
		resp, err := health.Check(rpcCtx(t), &grpc_health_v1.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
			t.Errorf("Check(%q) = %v, %v; want SERVING", svc, resp, err)
		}
	}
	_, err := health.Check(rpcCtx(t), &grpc_health_v1.HealthCheckRequest{Service: "nope"})
	apitest.WantCode(t, err, codes.NotFound)
	notReady.Store(true)
	if resp, err := health.Check(rpcCtx(t), &grpc_health_v1.HealthCheckRequest{}); err != nil || resp.GetStatus() != grpc_health_v1.HealthCheckResponse_NOT_SERVING {
		t.Errorf("Check while not ready = %v, %v; want NOT_SERVING", resp, err)
	}
	notReady.Store(false)
	s.api.Stopping()
	if resp, err := health.Check(rpcCtx(t), &grpc_health_v1.HealthCheckRequest{}); err != nil || resp.GetStatus() != grpc_health_v1.HealthCheckResponse_NOT_SERVING {
		t.Errorf("Check while stopping = %v, %v; want NOT_SERVING", resp, err)
	}
	if names := listServices(t, conn); !strings.Contains(names, "eventsidecar.v1.EventSidecar") || !strings.Contains(names, "grpc.health.v1.Health") {
		t.Errorf("reflection lists %s", names)
	}
}

// listServices asks server reflection for its services, space separated,
// and checks that it serves the EventSidecar file with its imports.
func listServices(t *testing.T, conn *grpc.ClientConn) string {
	t.Helper()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(rpcCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	req := &reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}
	if err := stream.Send(req); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	req = &reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{
		FileContainingSymbol: "eventsidecar.v1.EventSidecar"}}
	if err := stream.Send(req); err != nil {
		t.Fatal(err)
	}
	if resp, err = stream.Recv(); err != nil {
		t.Fatal(err)
	}
	// The file comes with its imports, cloudevent.proto among them.
	if files := resp.GetFileDescriptorResponse().GetFileDescriptorProto(); len(files) < 3 {
		t.Errorf("reflection file of EventSidecar: %d files, error %v; want it with its imports", len(files), resp.GetErrorResponse())
	}
	if err := stream.CloseSend(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	return strings.Join(names, " ")
}

func TestSubscribeEndsAtShutdown(t *testing.T) {
	conn, stop := dial(t, newServer(t, nil, server.Handlers{Subscribe: subscriber{}}))
	stream := startStream(t, rpcCtx(t), conn, "orders")
	if first, err := stream.Recv(); err != nil || first.GetStarted() == nil {
		t.Fatalf("first message %v, %v; want Started", first, err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	_, err := stream.Recv()
	// The cause's message: the stream was told to end, not cut off when
	// http.shutdown_timeout passed.
	if st := apitest.WantCode(t, err, codes.Unavailable); !strings.Contains(st.Message(), "shutting down") {
		t.Errorf("status message %q, want the shutdown's", st.Message())
	}
	if err := <-stopped; err != nil {
		t.Errorf("ServeGRPC: %v", err)
	}
}

func TestGRPCShutdownCancelsRPCsAfterTheTimeout(t *testing.T) {
	pub := &rpcs{hold: true, arrived: make(chan struct{}, 1)}
	s := newServer(t, func(c *config.HTTP) { c.ShutdownTimeout = 50 * time.Millisecond }, server.Handlers{RPC: pub})
	conn, stop := dial(t, s)
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: only the server ends the call
	t.Cleanup(cancel)
	called := make(chan error, 1)
	go func() {
		_, err := eventsidecarv1.NewEventSidecarClient(conn).Publish(ctx, &eventsidecarv1.PublishRequest{Topic: "a"})
		called <- err
	}()
	<-pub.arrived
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("ServeGRPC = %v, want nil after stopping at the timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeGRPC still stopping 5s after a 50ms http.shutdown_timeout")
	}
	if err := <-called; status.Code(err) == codes.OK {
		t.Errorf("RPC outlasting http.shutdown_timeout = %v, want it cancelled", err)
	}
}
