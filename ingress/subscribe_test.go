package ingress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dedup"
	"github.com/eventsidecar/eventsidecar/egress"
	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// streamHarness is a harness whose gRPC API delivers through a real
// egress.Manager with the given subscriptions.
type streamHarness struct {
	*harness
	subs   *egress.Manager
	conn   *grpc.ClientConn
	client eventsidecarv1.EventSidecarClient
}

func newStreamHarness(t *testing.T, mutate func(*config.Config), subs ...config.Subscription) *streamHarness {
	t.Helper()
	base := newHarness(t, mutate)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen, err := dedup.OpenDelivered(ctx, base.broker.JetStream(), base.cfg.Broker.Stream, base.cfg.Broker.DuplicateWindow, 1)
	if err != nil {
		t.Fatalf("open delivered-set: %v", err)
	}
	m, err := egress.NewManager(subs, base.broker, seen, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("new manager: %v", err)
	}
	h := newHarnessOn(t, base.cfg, base.broker, base.broker, m, slog.New(slog.DiscardHandler))
	conn := h.serveGRPC()
	return &streamHarness{harness: h, subs: m, conn: conn, client: eventsidecarv1.NewEventSidecarClient(conn)}
}

// streamSub is a gRPC-only subscription on topic with a short backoff.
func streamSub(name, topic string) config.Subscription {
	s := config.DefaultSubscription()
	s.Name, s.Topic = name, topic
	s.Retry.InitialBackoff, s.Retry.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	return s
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
func (h *streamHarness) subscribe(start *eventsidecarv1.SubscribeRequest_Start, kv ...string) *appStream {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(rpcCtx(h.t, kv...), 30*time.Second)
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

func (h *streamHarness) publish(topic string, evs ...*pb.CloudEvent) {
	h.t.Helper()
	if _, err := h.client.PublishBatch(rpcCtx(h.t), &eventsidecarv1.PublishBatchRequest{Topic: topic, Events: evs}); err != nil {
		h.t.Fatalf("publish: %v", err)
	}
}

// stats returns the named subscription's live state.
func (h *streamHarness) stats(name string) (egress.Stats, bool) {
	for _, s := range h.subs.Stats(context.Background()) {
		if s.Name == name {
			return s, true
		}
	}
	return egress.Stats{}, false
}

// settled waits until the subscription has no event pending or unsettled.
func (h *streamHarness) settled(name string) {
	h.t.Helper()
	poll.Until(h.t, 10*time.Second, name+" settled", func() bool {
		info, err := h.broker.JetStream().Consumer(context.Background(), h.cfg.Broker.Stream, name)
		if err != nil {
			return false
		}
		i, err := info.Info(context.Background())
		return err == nil && i.NumPending == 0 && i.NumAckPending == 0
	})
}

func start(name string, window uint32) *eventsidecarv1.SubscribeRequest_Start {
	return &eventsidecarv1.SubscribeRequest_Start{Subscription: name, MaxInFlight: window}
}

func TestSubscribeAck(t *testing.T) {
	h := newStreamHarness(t, nil, streamSub("orders", "orders.>"))
	app := h.subscribe(start("orders", 0))
	h.publish("orders.created", pbEvent("e1"))
	d := app.next()
	ev := d.GetEvent()
	if ev.GetId() != "e1" || ev.GetSource() != "/shop" || ev.GetTextData() != `{"n":1}` || d.GetAttempt() != 1 {
		t.Errorf("delivery = %v, want e1 from /shop with its JSON data as text, attempt 1", d)
	}
	if tp := ev.GetAttributes()["traceparent"].GetCeString(); !strings.HasPrefix(tp, "00-") {
		t.Errorf("traceparent = %q, want the delivery's trace context", tp)
	}
	app.ack(d)
	h.settled("orders")
	if s, _ := h.stats("orders"); s.Delivered != 1 || s.Streams != 1 || s.Endpoint != "" {
		t.Errorf("stats = %+v, want 1 delivered on 1 stream, no endpoint", s)
	}
	// A redelivery of an acknowledged event is suppressed: publishing it
	// again is a duplicate, and nothing more arrives before the next event.
	h.publish("orders.created", pbEvent("e1"), pbEvent("e2"))
	if d := app.next(); d.GetEvent().GetId() != "e2" {
		t.Errorf("next delivery = %s, want e2", d.GetEvent().GetId())
	}
}

func TestSubscribeDataKinds(t *testing.T) {
	h := newStreamHarness(t, nil, streamSub("orders", "orders.>"))
	app := h.subscribe(start("orders", 0))
	withData := func(id, ct string, data []byte) *pb.CloudEvent {
		e := pbEvent(id)
		e.Attributes["datacontenttype"] = ceString(ct)
		e.Data = &pb.CloudEvent_BinaryData{BinaryData: data}
		return e
	}
	h.publish("orders.created",
		withData("text", "text/plain; charset=utf-8", []byte("héllo")),
		withData("xml", "application/vnd.order+xml", []byte("<o/>")),
		withData("octets", "application/octet-stream", []byte("héllo")),
		withData("bad-utf8", "text/plain", []byte{0xff, 0xfe}))
	want := map[string]bool{"text": true, "xml": true, "octets": false, "bad-utf8": false}
	for range want {
		d := app.next()
		ev := d.GetEvent()
		if _, isText := ev.GetData().(*pb.CloudEvent_TextData); isText != want[ev.GetId()] {
			t.Errorf("delivery %s: data %T, want text_data %v", ev.GetId(), ev.GetData(), want[ev.GetId()])
		}
		app.ack(d)
	}
}

func TestSubscribeRetryWithDelay(t *testing.T) {
	sub := streamSub("orders", "orders.>")
	sub.Retry.MaxBackoff = 5 * time.Second
	h := newStreamHarness(t, nil, sub)
	app := h.subscribe(start("orders", 0))
	h.publish("orders.created", pbEvent("e1"))
	first := app.next()
	asked := time.Now()
	app.retry(first, 300*time.Millisecond)
	again := app.next()
	if waited := time.Since(asked); waited < 300*time.Millisecond {
		t.Errorf("redelivered after %s, want not before the 300ms asked for", waited)
	}
	if again.GetEvent().GetId() != "e1" || again.GetAttempt() != 2 || again.GetDeliveryId() == first.GetDeliveryId() {
		t.Errorf("redelivery = %v, want e1, attempt 2, a new delivery id", again)
	}
	app.ack(again)
	h.settled("orders")
	if s, _ := h.stats("orders"); s.Retried != 1 || s.Delivered != 1 {
		t.Errorf("stats = %+v, want 1 retried, 1 delivered", s)
	}
}

func TestSubscribeRejectDeadLetters(t *testing.T) {
	h := newStreamHarness(t, nil, streamSub("orders", "orders.>"))
	app := h.subscribe(start("orders", 0))
	h.publish("orders.created", pbEvent("e1"))
	app.reject(app.next(), "no such customer")
	h.settled("orders")
	dl := h.deadLetters("orders", 1)[0].Event
	if dl.ID() != "e1" || dl.Extensions()["dlqreason"] != "rejected: no such customer" ||
		fmt.Sprint(dl.Extensions()["dlqattempts"]) != "1" || dl.Extensions()["dlqsubscription"] != "orders" {
		t.Errorf("dead letter = %v", dl)
	}
}

func TestSubscribeRetriesUpToMaxAttempts(t *testing.T) {
	h := newStreamHarness(t, nil)
	app := h.subscribe(&eventsidecarv1.SubscribeRequest_Start{Subscription: "adhoc", Topic: "orders.*",
		Retry: &eventsidecarv1.RetryPolicy{MaxAttempts: 2, InitialBackoff: durationpb.New(time.Millisecond)}})
	h.publish("orders.created", pbEvent("e1"))
	app.retry(app.next(), 0)
	last := app.next()
	if last.GetAttempt() != 2 {
		t.Fatalf("attempt = %d, want 2", last.GetAttempt())
	}
	app.retry(last, 0)
	h.settled("adhoc")
	dl := h.deadLetters("adhoc", 1)[0].Event
	if reason := dl.Extensions()["dlqreason"]; reason != "gave up after 2 attempts: retry requested" {
		t.Errorf("dlqreason = %q", reason)
	}
}

// deadLetters waits for want dead letters of the subscription name.
func (h *streamHarness) deadLetters(name string, want int) []egress.DeadLetter {
	h.t.Helper()
	dls, err := h.subs.DeadLetters(name)
	if err != nil {
		h.t.Fatal(err)
	}
	var list []egress.DeadLetter
	poll.Until(h.t, 10*time.Second, "dead letters stored", func() bool {
		list, err = dls.List(context.Background(), 100)
		return err == nil && len(list) == want
	})
	return list
}

func TestSubscribeClosedStreamRedeliversPromptly(t *testing.T) {
	// The timeout makes the broker's own redelivery (the ack wait) 70s
	// away: only the closed stream handing its events back is prompt. With
	// one attempt allowed, an event handed back must not count as one.
	sub := streamSub("orders", "orders.>")
	sub.Timeout, sub.Retry.MaxAttempts = 30*time.Second, 1
	h := newStreamHarness(t, nil, sub)
	first := h.subscribe(start("orders", 4))
	h.publish("orders.created", pbEvent("e1"), pbEvent("e2"), pbEvent("e3"), pbEvent("e4"))
	for range 4 {
		first.next()
	}
	second := h.subscribe(start("orders", 4))
	first.cancel()
	got := map[string]uint32{}
	for range 4 {
		d := second.next()
		got[d.GetEvent().GetId()] = d.GetAttempt()
		second.ack(d)
	}
	if want := map[string]uint32{"e1": 1, "e2": 1, "e3": 1, "e4": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("second stream got %v, want every event, still at attempt 1", got)
	}
	h.settled("orders")
	if s, _ := h.stats("orders"); s.Delivered != 4 || s.Retried != 0 || s.DeadLettered != 0 {
		t.Errorf("stats = %+v, want 4 delivered, none retried or dead-lettered", s)
	}
}

func TestSubscribeStreamsShareEvents(t *testing.T) {
	h := newStreamHarness(t, nil, streamSub("orders", "orders.>"))
	apps := []*appStream{h.subscribe(start("orders", 1)), h.subscribe(start("orders", 1))}
	const n = 100
	evs := make([]*pb.CloudEvent, n)
	for i := range evs {
		evs[i] = pbEvent(fmt.Sprintf("e%d", i))
	}
	h.publish("orders.created", evs...)
	seen := map[string]int{}
	per := make([]int, len(apps))
	for len(seen) < n {
		select {
		case d := <-apps[0].got:
			seen[d.GetEvent().GetId()]++
			per[0]++
			apps[0].ack(d)
		case d := <-apps[1].got:
			seen[d.GetEvent().GetId()]++
			per[1]++
			apps[1].ack(d)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d events arrived", len(seen), n)
		}
	}
	h.settled("orders")
	for id, times := range seen {
		if times != 1 {
			t.Errorf("%s delivered %d times", id, times)
		}
	}
	if per[0] == 0 || per[1] == 0 {
		t.Errorf("per stream = %v, want both streams to take events", per)
	}
}

func TestSubscribeFlowControl(t *testing.T) {
	h := newStreamHarness(t, nil, streamSub("orders", "orders.>"))
	const window = 3
	app := h.subscribe(start("orders", window))
	evs := make([]*pb.CloudEvent, 10)
	for i := range evs {
		evs[i] = pbEvent(fmt.Sprintf("e%d", i))
	}
	h.publish("orders.created", evs...)
	unanswered := []*eventsidecarv1.SubscribeResponse_Delivery{app.next(), app.next(), app.next()}
	poll.Until(t, 10*time.Second, "3 deliveries in flight", func() bool {
		s, _ := h.stats("orders")
		return s.InFlight == window
	})
	select {
	case d := <-app.got:
		t.Fatalf("delivery %s sent with %d unanswered", d.GetDeliveryId(), window)
	case <-time.After(200 * time.Millisecond):
	}
	for answered := 0; answered < len(evs); answered++ {
		app.ack(unanswered[0])
		unanswered = unanswered[1:]
		if answered+window < len(evs) {
			unanswered = append(unanswered, app.next())
		}
		if len(unanswered) > window {
			t.Fatalf("%d unanswered deliveries, window %d", len(unanswered), window)
		}
	}
	h.settled("orders")
}

func TestSubscribeAdHocSubscription(t *testing.T) {
	h := newStreamHarness(t, nil)
	app := h.subscribe(&eventsidecarv1.SubscribeRequest_Start{Subscription: "shipping", Topic: "orders.*", Types: []string{"order.shipped"}})
	if s, ok := h.stats("shipping"); !ok || s.Topic != "orders.*" || s.Streams != 1 {
		t.Errorf("stats = %+v, %v; want the open ad-hoc subscription", s, ok)
	}
	created, shipped := pbEvent("e1"), pbEvent("e2")
	shipped.Type = "order.shipped"
	h.publish("orders.x", created, shipped)
	d := app.next()
	if d.GetEvent().GetId() != "e2" {
		t.Errorf("delivered %s, want only e2 (type order.shipped)", d.GetEvent().GetId())
	}
	app.ack(d)
	h.settled("shipping")
	if err := app.stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := app.end(); err != nil {
		t.Errorf("stream ended with %v after CloseSend, want OK", err)
	}
	poll.Until(t, 10*time.Second, "ad-hoc subscription forgotten", func() bool {
		_, ok := h.stats("shipping")
		return !ok
	})
	// Its consumer stays, durable: a new stream takes the events stored
	// in between.
	h.publish("orders.y", func() *pb.CloudEvent { e := pbEvent("e3"); e.Type = "order.shipped"; return e }())
	again := h.subscribe(&eventsidecarv1.SubscribeRequest_Start{Subscription: "shipping", Topic: "orders.*", Types: []string{"order.shipped"}})
	if d := again.next(); d.GetEvent().GetId() != "e3" {
		t.Errorf("delivered %s, want e3", d.GetEvent().GetId())
	}
}

func TestSubscribeSlowReaderEndsStream(t *testing.T) {
	sub := streamSub("orders", "orders.>")
	sub.Timeout = 300 * time.Millisecond
	h := newStreamHarness(t, nil, sub)
	// A client with a fixed 64 KiB flow-control window that never reads:
	// the sidecar cannot send the second 600 KB event.
	conn, err := grpc.NewClient(h.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	stream, err := eventsidecarv1.NewEventSidecarClient(conn).Subscribe(rpcCtx(t))
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
	poll.Until(t, 10*time.Second, "the stream ended", func() bool {
		s, _ := h.stats("orders")
		return s.Streams == 0 && s.InFlight == 0
	})
	for {
		if _, err = stream.Recv(); err != nil {
			break
		}
	}
	wantCode(t, err, codes.ResourceExhausted)
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
	h := newStreamHarness(t, nil, streamSub("orders", "orders.>"))
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
			st := wantCode(t, err, tt.code)
			if tt.field != "" {
				wantField(t, st, tt.field)
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
	h := newStreamHarness(t, nil, sub)
	apps := []*appStream{h.subscribe(start("ordered", 4)), h.subscribe(start("ordered", 4))}
	evs := make([]*pb.CloudEvent, 6)
	for i := range evs {
		evs[i] = pbEvent(fmt.Sprintf("e%d", i))
		evs[i].Attributes["partitionkey"] = ceString("k")
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
	h := newStreamHarness(t, nil, sub)
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
	app := (&streamHarness{harness: h.harness, subs: h.subs, client: eventsidecarv1.NewEventSidecarClient(conn)}).subscribe(start("orders", 0))
	h.publish("orders.created", pbEvent("e1"))
	app.next()
	cancel()
	wantCode(t, app.end(), codes.Unavailable)
	if err := <-served; err != nil {
		t.Errorf("ServeGRPC: %v", err)
	}
	// The unanswered delivery went back at once: the next stream has it.
	again := h.subscribe(start("orders", 0))
	if d := again.next(); d.GetEvent().GetId() != "e1" {
		t.Errorf("delivered %s, want e1", d.GetEvent().GetId())
	}
}
