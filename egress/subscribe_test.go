package egress

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/types/known/durationpb"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/internal/poll"
)

func TestSubscribeAck(t *testing.T) {
	h := newStreamHarness(t, streamSub("orders", "orders.>"))
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
	h := newStreamHarness(t, streamSub("orders", "orders.>"))
	app := h.subscribe(start("orders", 0))
	withData := func(id, ct string, data []byte) *pb.CloudEvent {
		e := pbEvent(id)
		e.Attributes["datacontenttype"] = pbString(ct)
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
	h := newStreamHarness(t, sub)
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
	h := newStreamHarness(t, streamSub("orders", "orders.>"))
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
	h := newStreamHarness(t)
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
func (h *streamHarness) deadLetters(name string, want int) []DeadLetter {
	h.t.Helper()
	dls, err := h.subs.DeadLetters(name)
	if err != nil {
		h.t.Fatal(err)
	}
	var list []DeadLetter
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
	h := newStreamHarness(t, sub)
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
	h := newStreamHarness(t, streamSub("orders", "orders.>"))
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
	h := newStreamHarness(t, streamSub("orders", "orders.>"))
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
	h := newStreamHarness(t)
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
