package egress

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/internal/apitest"
	"github.com/eventsidecar/eventsidecar/internal/poll"
)

func TestSubscribeSlowReaderEndsStream(t *testing.T) {
	sub := streamSub("orders", "orders.>")
	sub.Timeout = 300 * time.Millisecond
	h := newStreamHarness(t, sub)
	// A client with a fixed 64 KiB flow-control window that never reads:
	// the sidecar cannot send the second 600 KB event.
	conn, err := grpc.NewClient(h.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	// Bounds only the test: on a loaded machine under -race, two 600 KB
	// events and the slow-reader timeout take longer than rpcCtx allows.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	stream, err := eventsidecarv1.NewEventSidecarClient(conn).Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Start_{Start: start("orders", 2)}}); err != nil {
		t.Fatal(err)
	}
	big := func(id string) *pb.CloudEvent {
		e := pbEvent(id)
		e.Data = &pb.CloudEvent_BinaryData{BinaryData: []byte(`"` + strings.Repeat("x", 600_000) + `"`)}
		return e
	}
	h.publish("orders.big", big("e1"))
	h.publish("orders.big", big("e2"))
	poll.Until(t, time.Minute, "the stream ended", func() bool {
		s, _ := h.stats("orders")
		return s.Streams == 0 && s.InFlight == 0
	})
	for {
		if _, err = stream.Recv(); err != nil {
			break
		}
	}
	apitest.WantCode(t, err, codes.ResourceExhausted)
	// Its events went back to the broker for the next stream.
	app := h.subscribe(start("orders", 2))
	got := map[string]bool{}
	for range 2 {
		d := app.next()
		got[d.GetEvent().GetId()] = true
		app.ack(d)
	}
	if !got["e1"] || !got["e2"] {
		t.Errorf("next stream got %v, want e1 and e2", got)
	}
}

func TestSubscribeRejectsBadStreams(t *testing.T) {
	h := newStreamHarness(t, streamSub("orders", "orders.>"))
	ack := &eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Ack_{Ack: &eventsidecarv1.SubscribeRequest_Ack{DeliveryId: "1"}}}
	startMsg := func(s *eventsidecarv1.SubscribeRequest_Start) *eventsidecarv1.SubscribeRequest {
		return &eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Start_{Start: s}}
	}
	tests := []struct {
		name  string
		msgs  []*eventsidecarv1.SubscribeRequest
		code  codes.Code
		field string
	}{
		{"answer first", []*eventsidecarv1.SubscribeRequest{ack}, codes.InvalidArgument, "start"},
		{"no name", []*eventsidecarv1.SubscribeRequest{startMsg(start("", 0))}, codes.InvalidArgument, "start.subscription"},
		{"unknown subscription", []*eventsidecarv1.SubscribeRequest{startMsg(start("nope", 0))}, codes.NotFound, ""},
		{"window too big", []*eventsidecarv1.SubscribeRequest{startMsg(start("orders", 5000))}, codes.InvalidArgument, "start.max_in_flight"},
		{"types without topic", []*eventsidecarv1.SubscribeRequest{startMsg(&eventsidecarv1.SubscribeRequest_Start{Subscription: "x", Types: []string{"a"}})},
			codes.InvalidArgument, "start.topic"},
		{"bad topic", []*eventsidecarv1.SubscribeRequest{startMsg(&eventsidecarv1.SubscribeRequest_Start{Subscription: "x", Topic: "a.b*"})},
			codes.InvalidArgument, "start.topic"},
		{"bad timeout", []*eventsidecarv1.SubscribeRequest{startMsg(&eventsidecarv1.SubscribeRequest_Start{Subscription: "x", Topic: "a", Timeout: durationpb.New(-time.Second)})},
			codes.InvalidArgument, "start.timeout"},
		{"bad retry", []*eventsidecarv1.SubscribeRequest{startMsg(&eventsidecarv1.SubscribeRequest_Start{Subscription: "x", Topic: "a",
			Retry: &eventsidecarv1.RetryPolicy{Multiplier: 0.5}})}, codes.InvalidArgument, "start.retry.multiplier"},
		{"configured name as ad-hoc", []*eventsidecarv1.SubscribeRequest{startMsg(&eventsidecarv1.SubscribeRequest_Start{Subscription: "orders", Topic: "a"})},
			codes.FailedPrecondition, ""},
		{"second start", []*eventsidecarv1.SubscribeRequest{startMsg(start("orders", 0)), startMsg(start("orders", 0))}, codes.InvalidArgument, "start"},
		{"unknown delivery", []*eventsidecarv1.SubscribeRequest{startMsg(start("orders", 0)), ack}, codes.InvalidArgument, "delivery_id"},
		{"empty answer", []*eventsidecarv1.SubscribeRequest{startMsg(start("orders", 0)), {}}, codes.InvalidArgument, "request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream, err := h.client.Subscribe(rpcCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tt.msgs {
				if err := stream.Send(m); err != nil {
					t.Fatal(err)
				}
			}
			for err == nil {
				_, err = stream.Recv()
			}
			st := apitest.WantCode(t, err, tt.code)
			if tt.field != "" {
				apitest.WantField(t, st, tt.field)
			}
		})
	}
	if s, _ := h.stats("orders"); s.Streams != 0 {
		t.Errorf("%d streams still open", s.Streams)
	}
}

func TestSubscribeOrderedStreamsHandOver(t *testing.T) {
	// The timeout makes the pin's TTL (the ack wait) 70s: only the closed
	// stream handing its pin over is prompt.
	sub := streamSub("ordered", "orders.>")
	sub.OrderedByKey, sub.Timeout = true, 30*time.Second
	h := newStreamHarness(t, sub)
	apps := []*appStream{h.subscribe(start("ordered", 4)), h.subscribe(start("ordered", 4))}
	evs := make([]*pb.CloudEvent, 6)
	for i := range evs {
		evs[i] = pbEvent(fmt.Sprintf("e%d", i))
		evs[i].Attributes["partitionkey"] = pbString("k")
	}
	h.publish("orders.created", evs...)
	var first, other *appStream
	var d *eventsidecarv1.SubscribeResponse_Delivery
	select {
	case d = <-apps[0].got:
		first, other = apps[0], apps[1]
	case d = <-apps[1].got:
		first, other = apps[1], apps[0]
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10s")
	}
	// One stream at a time has the key, in order.
	var order []string
	for range 2 {
		order = append(order, d.GetEvent().GetId())
		first.ack(d)
		d = first.next()
	}
	order = append(order, d.GetEvent().GetId())
	if got := strings.Join(order, " "); got != "e0 e1 e2" {
		t.Errorf("first stream got %s, want e0 e1 e2", got)
	}
	// e2 is unanswered when the first stream goes away; the other stream
	// gets the rest at once. (Their order across the hand-over is not
	// guaranteed: events the first stream never fetched may overtake the
	// ones it handed back.)
	first.cancel()
	rest := map[string]bool{}
	for range 4 {
		d := other.next()
		rest[d.GetEvent().GetId()] = true
		other.ack(d)
	}
	if len(rest) != 4 || rest["e0"] || rest["e1"] {
		t.Errorf("other stream got %v, want e2 … e5", rest)
	}
	h.settled("ordered")
}

func TestSubscribeEndsAtShutdown(t *testing.T) {
	sub := streamSub("orders", "orders.>")
	sub.Timeout = 30 * time.Second // the ack wait (70s) is far away
	h := newStreamHarness(t, sub)
	conn, _, stop := serveSubscriber(t, h.subs)
	app := (&streamHarness{env: h.env, subs: h.subs, client: eventsidecarv1.NewEventSidecarClient(conn)}).subscribe(start("orders", 0))
	h.publish("orders.created", pbEvent("e1"))
	app.next()
	stop()
	st := apitest.WantCode(t, app.end(), codes.Unavailable)
	if msg := st.Message(); !strings.Contains(msg, "shutting down") || !strings.Contains(msg, "went back to the broker") {
		t.Errorf("status message %q, want the cause's and where the deliveries went", msg)
	}
	// The unanswered delivery went back at once: the next stream has it.
	again := h.subscribe(start("orders", 0))
	if d := again.next(); d.GetEvent().GetId() != "e1" {
		t.Errorf("delivered %s, want e1", d.GetEvent().GetId())
	}
}
