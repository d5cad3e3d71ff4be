package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/egress"
	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// streamOnly is a configured subscription "orders" on orders.> with no
// endpoint (delivered to gRPC streams only) and the given attempt timeout.
func streamOnly(timeout string) string {
	return `subscriptions:
  - name: orders
    topic: "orders.>"
    endpoint: ""
    timeout: ` + timeout + `
    retry:
` + fastRetry
}

// delivery is one delivery on a Subscribe stream.
type delivery = eventsidecarv1.SubscribeResponse_Delivery

// subscriber is the app's side of one Subscribe stream.
type subscriber struct {
	t      *testing.T
	sc     *sidecar
	rpc    grpc.BidiStreamingClient[eventsidecarv1.SubscribeRequest, eventsidecarv1.SubscribeResponse]
	cancel context.CancelFunc
	got    chan *delivery
	ended  chan struct{} // closed when the stream has ended; then err says how
	err    error
}

// subscribe opens a Subscribe stream on the configured subscription name
// with at most window unanswered deliveries, waits for Started, and then
// receives the deliveries in the background.
func (s *sidecar) subscribe(name string, window uint32) *subscriber {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s.t.Cleanup(cancel)
	rpc, err := eventsidecarv1.NewEventSidecarClient(s.dial()).Subscribe(ctx)
	if err != nil {
		s.t.Fatalf("Subscribe: %v", err)
	}
	start := &eventsidecarv1.SubscribeRequest_Start{Subscription: name, MaxInFlight: window}
	if err := rpc.Send(&eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Start_{Start: start}}); err != nil {
		s.t.Fatalf("send start: %v", err)
	}
	first, err := rpc.Recv()
	started := first.GetStarted()
	if err != nil || started.GetSubscription() != name || (window != 0 && started.GetMaxInFlight() != window) {
		s.t.Fatalf("Subscribe %v: first answer %v, %v; want Started", start, first, err)
	}
	sub := &subscriber{t: s.t, sc: s, rpc: rpc, cancel: cancel, got: make(chan *delivery, 1024), ended: make(chan struct{})}
	go func() {
		defer close(sub.ended)
		for {
			resp, err := rpc.Recv()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					sub.err = err
				}
				return
			}
			sub.got <- resp.GetDelivery()
		}
	}()
	return sub
}

// next waits up to within for the next delivery.
func (a *subscriber) next(within time.Duration) *delivery {
	a.t.Helper()
	select {
	case d := <-a.got:
		return d
	case <-a.ended:
		a.t.Fatalf("the stream ended (%v) waiting for a delivery; sidecar log:\n%s", a.err, a.sc.log())
	case <-time.After(within):
		a.t.Fatalf("no delivery within %s; sidecar log:\n%s", within, a.sc.log())
	}
	return nil
}

// nextIDs receives deliveries until it has seen every id in want (a
// redelivery of one already seen may come in between: the deliveries are
// not answered), and returns the latest delivery of each.
func (a *subscriber) nextIDs(within time.Duration, want []string) map[string]*delivery {
	a.t.Helper()
	deadline := time.Now().Add(within)
	got := map[string]*delivery{}
	for len(got) < len(want) {
		d := a.next(time.Until(deadline))
		got[d.GetEvent().GetId()] = d
	}
	for _, id := range want {
		if got[id] == nil {
			a.t.Fatalf("received %v, want exactly the events %v", slices.Sorted(maps.Keys(got)), want)
		}
	}
	return got
}

func (a *subscriber) answer(req *eventsidecarv1.SubscribeRequest) {
	a.t.Helper()
	if err := a.rpc.Send(req); err != nil {
		a.t.Fatalf("send %v: %v", req, err)
	}
}

func (a *subscriber) ack(d *delivery) {
	a.t.Helper()
	a.answer(&eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Ack_{
		Ack: &eventsidecarv1.SubscribeRequest_Ack{DeliveryId: d.GetDeliveryId()}}})
}

func (a *subscriber) reject(d *delivery, reason string) {
	a.t.Helper()
	a.answer(&eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Reject_{
		Reject: &eventsidecarv1.SubscribeRequest_Reject{DeliveryId: d.GetDeliveryId(), Reason: reason}}})
}

// noMore fails the test if a delivery is waiting on the stream.
func (a *subscriber) noMore() {
	a.t.Helper()
	select {
	case d := <-a.got:
		a.t.Errorf("unexpected delivery %v", d)
	default:
	}
}

// subscription returns the named subscription's entry of GET
// /v1/subscriptions (the zero egress.Stats when it is not listed).
func (s *sidecar) subscription(name string) egress.Stats {
	s.t.Helper()
	code, body := s.get("/v1/subscriptions")
	var list struct{ Subscriptions []egress.Stats }
	if err := json.Unmarshal(body, &list); code != 200 || err != nil {
		s.t.Fatalf("/v1/subscriptions = %d %s (%v)", code, body, err)
	}
	for _, st := range list.Subscriptions {
		if st.Name == name {
			return st
		}
	}
	return egress.Stats{}
}

// waitStats waits until the named subscription's entry is want.
func (s *sidecar) waitStats(name string, want egress.Stats) {
	s.t.Helper()
	var got egress.Stats
	poll.Until(s.t, 20*time.Second, fmt.Sprintf("/v1/subscriptions lists %+v", want), func() bool {
		got = s.subscription(name)
		return got == want
	})
}

func TestSubscribeStreamReceivesHTTPPublish(t *testing.T) {
	sc := startSidecar(t, withGRPC(embeddedConfig(t.TempDir(), streamOnly("5s"))))
	app := sc.subscribe("orders", 4)
	const traceID, publisherSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	r := sc.mustPublish("/v1/publish/orders.created", `{"n":1}`, "ce-specversion: 1.0", "ce-id: sub-1",
		"ce-source: /shop", "ce-type: com.example.order", "Content-Type: application/json",
		"traceparent: 00-"+traceID+"-"+publisherSpan+"-01")
	stored, err := stream(t, sc.natsURL).GetMsg(t.Context(), r.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	// The stored traceparent is the publish span's.
	publishSpan := strings.Split(stored.Header.Get("ce-traceparent"), "-")
	d := app.next(20 * time.Second)
	ev := d.GetEvent()
	if d.GetAttempt() != 1 || d.GetDeliveryId() == "" || ev.GetId() != "sub-1" || ev.GetSource() != "/shop" ||
		ev.GetType() != "com.example.order" || ev.GetTextData() != `{"n":1}` ||
		ev.GetAttributes()["datacontenttype"].GetCeString() != "application/json" {
		t.Errorf("delivery = %v; want sub-1 from /shop, its JSON data as text, attempt 1", d)
	}
	tp := strings.Split(ev.GetAttributes()["traceparent"].GetCeString(), "-")
	if len(publishSpan) != 4 || len(tp) != 4 || tp[1] != traceID || tp[2] == publisherSpan || tp[2] == publishSpan[2] ||
		tp[2] == strings.Repeat("0", 16) {
		t.Errorf("traceparent = %v (stored %v); want the delivery's, a span in the publisher's trace %s", tp, publishSpan, traceID)
	}
	app.ack(d)
	settled(t, sc.natsURL, "orders")
	sc.waitStats("orders", egress.Stats{Name: "orders", Topic: "orders.>", State: "delivering", Streams: 1, Delivered: 1})
	app.noMore()
}

func TestSubscribeRejectDeadLetters(t *testing.T) {
	sc := startSidecar(t, withGRPC(embeddedConfig(t.TempDir(), streamOnly("5s"))))
	app := sc.subscribe("orders", 0)
	sc.mustPublish("/v1/publish/orders.created", `{"n":2}`, "ce-specversion: 1.0", "ce-id: sub-2",
		"ce-source: /shop", "ce-type: t", "Content-Type: application/json")
	d := app.next(20 * time.Second)
	if d.GetEvent().GetId() != "sub-2" {
		t.Fatalf("delivered %v, want sub-2", d)
	}
	app.reject(d, "no such customer")
	settled(t, sc.natsURL, "orders")
	sc.waitStats("orders", egress.Stats{Name: "orders", Topic: "orders.>", State: "delivering", Streams: 1, DeadLettered: 1})

	code, body := sc.get("/v1/subscriptions/orders/deadletters")
	var list struct {
		Deadletters []struct {
			Event        struct{ ID, Source string }
			Reason       string `json:"dlqreason"`
			Attempts     int    `json:"dlqattempts"`
			Subscription string `json:"dlqsubscription"`
		}
	}
	if err := json.Unmarshal(body, &list); code != 200 || err != nil {
		t.Fatalf("dead letters = %d %s (%v)", code, body, err)
	}
	if len(list.Deadletters) != 1 {
		t.Fatalf("dead letters = %s, want one", body)
	}
	if dl := list.Deadletters[0]; dl.Event.ID != "sub-2" || dl.Event.Source != "/shop" ||
		dl.Reason != "rejected: no such customer" || dl.Attempts != 1 || dl.Subscription != "orders" {
		t.Errorf("dead letter = %+v; want sub-2 rejected after 1 attempt", dl)
	}
	app.noMore()
}

// publishOrders publishes the events ids on orders.created.
func publishOrders(sc *sidecar, ids ...string) {
	for i, id := range ids {
		sc.mustPublish("/v1/publish/orders.created", fmt.Sprintf(`{"n":%d}`, i), "ce-specversion: 1.0",
			"ce-id: "+id, "ce-source: /shop", "ce-type: t", "Content-Type: application/json")
	}
}

// onceEach fails the test unless count holds exactly ids, each once.
func onceEach(t *testing.T, count map[string]int, ids []string) {
	t.Helper()
	want := map[string]int{}
	for _, id := range ids {
		want[id] = 1
	}
	if !maps.Equal(count, want) {
		t.Errorf("got %v, want each of %v once", count, ids)
	}
}

func TestSubscribeStreamsOnTwoSidecarsHandOver(t *testing.T) {
	// timeout 30s: the broker itself redelivers only after the ack wait,
	// 70s; the stream on the second sidecar gets the first one's events
	// well before that only if the closed stream hands them back.
	cfg := streamOnly("30s")
	a := startSidecar(t, withGRPC(embeddedConfig(t.TempDir(), cfg)))
	b := startSidecar(t, withGRPC(urlConfig("e2e-2", a.natsURL, cfg)))
	first := []string{"h-0", "h-1", "h-2", "h-3"}
	publishOrders(a, first...)
	onA := a.subscribe("orders", 4)
	held := onA.nextIDs(20*time.Second, first)
	acked := map[string]int{}
	ack := func(on *subscriber, d *delivery) {
		on.ack(d)
		acked[d.GetEvent().GetId()]++
	}
	ack(onA, held["h-0"])
	unsettled(t, a.natsURL, "orders", 3)
	a.waitStats("orders", egress.Stats{Name: "orders", Topic: "orders.>", State: "delivering", Streams: 1, Pending: 3, InFlight: 3, Delivered: 1})

	onB := b.subscribe("orders", 4)
	onA.cancel()
	handedOver := time.Now()
	again := onB.nextIDs(15*time.Second, first[1:])
	t.Logf("the second sidecar's stream got the 3 unanswered events %s after the first stream was cancelled", time.Since(handedOver))
	for _, d := range again {
		if d.GetAttempt() != 1 {
			t.Errorf("delivery %v; want attempt 1 (handed back unanswered, not a failed attempt)", d)
		}
		ack(onB, d)
	}
	// The first sidecar's stream is gone and its count stays at the one ack.
	poll.Until(t, 20*time.Second, "the first stream closed", func() bool {
		st := a.subscription("orders")
		return st.Streams == 0 && st.InFlight == 0 && st.Delivered == 1 && st.Retried == 0 && st.DeadLettered == 0
	})

	// The second sidecar's stream now takes the new events too.
	later := []string{"h-4", "h-5", "h-6", "h-7"}
	publishOrders(a, later...)
	for _, d := range onB.nextIDs(20*time.Second, later) {
		if d.GetAttempt() != 1 {
			t.Errorf("delivery %v; want attempt 1", d)
		}
		ack(onB, d)
	}
	settled(t, a.natsURL, "orders")
	onceEach(t, acked, append(first, later...))
	b.waitStats("orders", egress.Stats{Name: "orders", Topic: "orders.>", State: "delivering", Streams: 1, Delivered: 7})
	onB.noMore()
}

func TestSubscribeKill9WithUnansweredDeliveries(t *testing.T) {
	// timeout 1s: after the crash, the broker redelivers the unanswered
	// events after the ack wait, 12s.
	dir := t.TempDir()
	cfg := withGRPC(embeddedConfig(dir, streamOnly("1s")))
	sc := startSidecar(t, cfg)
	ids := []string{"k-0", "k-1", "k-2", "k-3", "k-4"}
	publishOrders(sc, ids...)
	sc.waitStats("orders", egress.Stats{Name: "orders", Topic: "orders.>", State: "paused", StateReason: "no stream open", Pending: uint64(len(ids))})
	sc.subscribe("orders", uint32(len(ids))).nextIDs(20*time.Second, ids)
	sc.kill()
	killed := time.Now()

	restarted := startSidecar(t, cfg)
	app := restarted.subscribe("orders", uint32(len(ids)))
	got := map[string]int{}
	attempts := map[string]uint32{}
	for len(got) < len(ids) {
		d := app.next(time.Until(killed.Add(60 * time.Second)))
		got[d.GetEvent().GetId()]++
		attempts[d.GetEvent().GetId()] = d.GetAttempt()
		app.ack(d)
	}
	t.Logf("redelivered %s after the kill, attempts %v", time.Since(killed), attempts)
	settled(t, restarted.natsURL, "orders")
	onceEach(t, got, ids)
	restarted.waitStats("orders", egress.Stats{Name: "orders", Topic: "orders.>", State: "delivering", Streams: 1, Delivered: uint64(len(ids))})
	app.noMore()
}
