package egress

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	ceprotobuf "github.com/cloudevents/sdk-go/binding/format/protobuf/v2"
	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/problem"
)

// service is the EventSidecar service with Subscribe only, served by a
// Subscriber. Once stopping ends, its streams' contexts end with an
// Unavailable problem as their cause, as ingress's do when its gRPC
// server stops.
type service struct {
	eventsidecarv1.UnimplementedEventSidecarServer
	sub      *Subscriber
	stopping context.Context
}

func (s *service) Subscribe(stream subscribeStream) error {
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	defer context.AfterFunc(s.stopping, func() { cancel(problem.New(problem.CodeUnavailable, "the sidecar is shutting down")) })()
	return s.sub.Subscribe(ctxStream{subscribeStream: stream, ctx: ctx})
}

// ctxStream is a stream with another context.
type ctxStream struct {
	subscribeStream
	ctx context.Context
}

func (s ctxStream) Context() context.Context { return s.ctx }

// streamHarness is a Manager with the given subscriptions whose
// Subscriber is served over gRPC on a loopback port.
type streamHarness struct {
	*env
	subs     *Manager
	conn     *grpc.ClientConn
	client   eventsidecarv1.EventSidecarClient
	grpcAddr string
}

func newStreamHarness(t *testing.T, subs ...config.Subscription) *streamHarness {
	t.Helper()
	e := newEnv(t)
	m, err := NewManager(subs, e.b, e.seen, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("new manager: %v", err)
	}
	conn, addr, _ := serveSubscriber(t, m)
	return &streamHarness{env: e, subs: m, conn: conn, client: eventsidecarv1.NewEventSidecarClient(conn), grpcAddr: addr}
}

// serveSubscriber serves m's Subscriber over gRPC on a loopback port
// until the test ends, and returns a connection to it, its address, and a
// func that ends its streams as a stopping server does.
func serveSubscriber(t *testing.T, m *Manager) (*grpc.ClientConn, string, context.CancelFunc) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stopping, stop := context.WithCancel(context.Background())
	srv := grpc.NewServer()
	eventsidecarv1.RegisterEventSidecarServer(srv, &service{sub: NewSubscriber(m), stopping: stopping})
	var served sync.WaitGroup
	served.Go(func() { _ = srv.Serve(ln) })
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		stop()
		srv.Stop()
		served.Wait()
	})
	return conn, ln.Addr().String(), stop
}

// streamSub is a gRPC-only subscription on topic with a short backoff.
func streamSub(name, topic string) config.Subscription {
	s := config.DefaultSubscription()
	s.Name, s.Topic = name, topic
	s.Retry.InitialBackoff, s.Retry.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	return s
}

// pbEvent is a valid protobuf event with id.
func pbEvent(id string) *pb.CloudEvent {
	return &pb.CloudEvent{Id: id, Source: "/shop", SpecVersion: "1.0", Type: "order.created",
		Attributes: map[string]*pb.CloudEventAttributeValue{"datacontenttype": pbString("application/json")},
		Data:       &pb.CloudEvent_BinaryData{BinaryData: []byte(`{"n":1}`)}}
}

// publish stores the protobuf events on topic through the broker.
func (h *streamHarness) publish(topic string, pbs ...*pb.CloudEvent) {
	h.t.Helper()
	evs := make([]*event.Event, len(pbs))
	for i, p := range pbs {
		ev, err := ceprotobuf.FromProto(p)
		if err != nil {
			h.t.Fatalf("event %s: %v", p.GetId(), err)
		}
		evs[i] = ev
	}
	h.env.publish(topic, evs...)
}

func rpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// appStream is the app's side of a Subscribe stream.
type appStream struct {
	t      *testing.T
	stream grpc.BidiStreamingClient[eventsidecarv1.SubscribeRequest, eventsidecarv1.SubscribeResponse]
	cancel context.CancelFunc
	got    chan *eventsidecarv1.SubscribeResponse_Delivery
	ended  chan error // the stream's final error (nil for OK)
}

// subscribe opens a stream with start, waits for Started and then
// receives deliveries in the background.
func (h *streamHarness) subscribe(start *eventsidecarv1.SubscribeRequest_Start) *appStream {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(rpcCtx(h.t), 30*time.Second)
	h.t.Cleanup(cancel)
	stream, err := h.client.Subscribe(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := stream.Send(&eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Start_{Start: start}}); err != nil {
		h.t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		h.t.Fatalf("Subscribe %v: %v", start, err)
	}
	if first.GetStarted() == nil {
		h.t.Fatalf("first message %v, want Started", first)
	}
	a := &appStream{t: h.t, stream: stream, cancel: cancel, got: make(chan *eventsidecarv1.SubscribeResponse_Delivery, 1024), ended: make(chan error, 1)}
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				a.ended <- err
				return
			}
			a.got <- resp.GetDelivery()
		}
	}()
	return a
}

// next waits for the next delivery.
func (a *appStream) next() *eventsidecarv1.SubscribeResponse_Delivery {
	a.t.Helper()
	select {
	case d := <-a.got:
		return d
	case err := <-a.ended:
		a.t.Fatalf("stream ended waiting for a delivery: %v", err)
	case <-time.After(10 * time.Second):
		a.t.Fatal("no delivery within 10s")
	}
	return nil
}

func (a *appStream) send(req *eventsidecarv1.SubscribeRequest) {
	a.t.Helper()
	if err := a.stream.Send(req); err != nil {
		a.t.Fatalf("send %v: %v", req, err)
	}
}

func (a *appStream) ack(d *eventsidecarv1.SubscribeResponse_Delivery) {
	a.send(&eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Ack_{Ack: &eventsidecarv1.SubscribeRequest_Ack{DeliveryId: d.GetDeliveryId()}}})
}

func (a *appStream) retry(d *eventsidecarv1.SubscribeResponse_Delivery, delay time.Duration) {
	a.send(&eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Retry_{Retry: &eventsidecarv1.SubscribeRequest_Retry{
		DeliveryId: d.GetDeliveryId(), Delay: durationpb.New(delay)}}})
}

func (a *appStream) reject(d *eventsidecarv1.SubscribeResponse_Delivery, reason string) {
	a.send(&eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Reject_{Reject: &eventsidecarv1.SubscribeRequest_Reject{
		DeliveryId: d.GetDeliveryId(), Reason: reason}}})
}

// end waits for the stream's final status.
func (a *appStream) end() error {
	a.t.Helper()
	select {
	case err := <-a.ended:
		return err
	case <-time.After(10 * time.Second):
		a.t.Fatal("the stream did not end within 10s")
		return nil
	}
}

// stats returns the named subscription's live state.
func (h *streamHarness) stats(name string) (Stats, bool) {
	for _, s := range h.subs.Stats(context.Background()) {
		if s.Name == name {
			return s, true
		}
	}
	return Stats{}, false
}

func start(name string, window uint32) *eventsidecarv1.SubscribeRequest_Start {
	return &eventsidecarv1.SubscribeRequest_Start{Subscription: name, MaxInFlight: window}
}
