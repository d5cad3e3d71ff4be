package ingress

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/problem"
)

// knownSubscriber answers a Subscribe stream as egress.Subscriber (which
// has the tests of the stream itself) does in the two cases ingress's part
// shows in: NotFound for a start naming another subscription than
// "orders", else Started, and once the stream's context ends, the status of
// its cause.
type knownSubscriber struct{}

var _ Subscriber = knownSubscriber{}

func (knownSubscriber) Subscribe(stream subscribeStream) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	if name := req.GetStart().GetSubscription(); name != "orders" {
		return problem.GRPCStatus(problem.New(problem.CodeNotFound, "unknown subscription "+name))
	}
	started := &eventsidecarv1.SubscribeResponse{Response: &eventsidecarv1.SubscribeResponse_Started_{
		Started: &eventsidecarv1.SubscribeResponse_Started{Subscription: "orders"}}}
	if err := stream.Send(started); err != nil {
		return err
	}
	<-stream.Context().Done()
	return problem.GRPCStatus(context.Cause(stream.Context()))
}

// streamHarness is a harness whose gRPC API delivers through
// knownSubscriber.
type streamHarness struct {
	*harness
	conn   *grpc.ClientConn
	client eventsidecarv1.EventSidecarClient
}

func newStreamHarness(t *testing.T, mutate func(*config.Config)) *streamHarness {
	t.Helper()
	base := newHarness(t, mutate)
	h := newHarnessOn(t, base.cfg, base.broker, base.broker, nil, knownSubscriber{}, base.log)
	conn := h.serveGRPC()
	return &streamHarness{harness: h, conn: conn, client: eventsidecarv1.NewEventSidecarClient(conn)}
}

func start(name string, window uint32) *eventsidecarv1.SubscribeRequest_Start {
	return &eventsidecarv1.SubscribeRequest_Start{Subscription: name, MaxInFlight: window}
}

func ceString(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
}

func TestSubscribeWithoutSubscriberIsUnimplemented(t *testing.T) {
	h := newHarness(t, nil)
	stream, err := eventsidecarv1.NewEventSidecarClient(h.serveGRPC()).Subscribe(rpcCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Start_{Start: start("orders", 0)}})
	_, err = stream.Recv()
	wantCode(t, err, codes.Unimplemented)
}

func TestSubscribeEndsAtShutdown(t *testing.T) {
	h := newStreamHarness(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- h.api.ServeGRPC(ctx, ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	stream, err := eventsidecarv1.NewEventSidecarClient(conn).Subscribe(rpcCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Start_{Start: start("orders", 0)}}); err != nil {
		t.Fatal(err)
	}
	if first, err := stream.Recv(); err != nil || first.GetStarted() == nil {
		t.Fatalf("first message %v, %v; want Started", first, err)
	}
	cancel()
	_, err = stream.Recv()
	// The cause's message: the stream was told to end, not cut off when
	// http.shutdown_timeout passed.
	if st := wantCode(t, err, codes.Unavailable); !strings.Contains(st.Message(), "shutting down") {
		t.Errorf("status message %q, want the shutdown's", st.Message())
	}
	if err := <-served; err != nil {
		t.Errorf("ServeGRPC: %v", err)
	}
}
