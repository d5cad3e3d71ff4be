package egress_test

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/egress"
)

// dlBroker opens an embedded, in-process broker in a fresh directory and
// closes it when the test ends.
func dlBroker(t *testing.T) *broker.Client {
	t.Helper()
	cfg := config.Default().Broker
	cfg.Embedded.StoreDir = t.TempDir()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := broker.Open(t.Context(), cfg, "eventsidecar egress test", log)
	if err != nil {
		t.Fatalf("broker.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// dlSub is a subscription; shared subscriptions use the dead-letter topic
// "deadletter.shared".
func dlSub(name string, shared bool) config.Subscription {
	s := config.DefaultSubscription()
	s.Name, s.Topic, s.Endpoint = name, "orders.>", "http://127.0.0.1:1/"
	if shared {
		s.DeadLetterTopic = "deadletter.shared"
	}
	return s
}

// dlEvent is event id as sub dead-lettered it: with every dlq* extension
// and an extension of its own.
func dlEvent(t *testing.T, sub, id string) *event.Event {
	t.Helper()
	ev := event.New()
	ev.SetID(id)
	ev.SetSource("/test/orders")
	ev.SetType("com.example.order.created")
	ev.SetExtension("partitionkey", "customer-"+id)
	if err := ev.SetData("application/json", []byte(`{"order":"`+id+`"}`)); err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string]string{
		"dlqreason": "HTTP 400", "dlqstatus": "400", "dlqbody": "bad order", "dlqattempts": "1",
		"dlqsubscription": sub, "dlqtime": "2024-05-06T07:08:09Z",
	} {
		ev.SetExtension(name, value)
	}
	if err := ev.Validate(); err != nil {
		t.Fatalf("test event invalid: %v", err)
	}
	return &ev
}

// dlPublish stores events on topic and fails the test unless every one is
// stored.
func dlPublish(t *testing.T, b *broker.Client, topic string, evs ...*event.Event) {
	t.Helper()
	msgs := make([]broker.Message, len(evs))
	for i, ev := range evs {
		msgs[i] = broker.Message{Topic: topic, Event: ev}
	}
	for i, r := range b.Publish(t.Context(), msgs) {
		if r.Err != nil {
			t.Fatalf("publish %q to %q: %v", evs[i].ID(), topic, r.Err)
		}
	}
}

// dlDead stores dead letters of sub with the given ids.
func dlDead(t *testing.T, b *broker.Client, sub config.Subscription, ids ...string) {
	t.Helper()
	evs := make([]*event.Event, len(ids))
	for i, id := range ids {
		evs[i] = dlEvent(t, sub.Name, id)
	}
	dlPublish(t, b, sub.DeadLetter(), evs...)
}

// dlStored is every message stored on topic, oldest first.
func dlStored(t *testing.T, b *broker.Client, topic string) []*jetstream.RawStreamMsg {
	t.Helper()
	st, err := b.JetStream().Stream(t.Context(), b.Stream())
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; seq++ {
		m, err := st.GetMsg(t.Context(), seq, jetstream.WithGetMsgSubject(b.Subject(topic)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Fatalf("GetMsg(%d, %q): %v", seq, topic, err)
		}
		out = append(out, m)
		seq = m.Sequence
	}
}

func dlList(t *testing.T, d *egress.DeadLetters, limit int) []egress.DeadLetter {
	t.Helper()
	dls, err := d.List(t.Context(), limit)
	if err != nil {
		t.Fatalf("List(%d): %v", limit, err)
	}
	return dls
}

func dlIDs(dls []egress.DeadLetter) []string {
	ids := make([]string, len(dls))
	for i, dl := range dls {
		ids[i] = dl.Event.ID()
	}
	return ids
}

func dlSeq(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%d", prefix, i+1)
	}
	return ids
}

// dlFixture stores dead letters of "orders" (o1..o5), and of "a" (a1, a2)
// and "b" (b1) on a shared topic, interleaved with other events and a
// message on the dead-letter topic that is not a CloudEvent.
func dlFixture(t *testing.T) *broker.Client {
	t.Helper()
	b := dlBroker(t)
	orders, a, bs := dlSub("orders", false), dlSub("a", true), dlSub("b", true)
	dlDead(t, b, orders, "o1", "o2")
	dlDead(t, b, a, "a1")
	dlPublish(t, b, "orders.created", dlEvent(t, "orders", "not-a-dead-letter"))
	if _, err := b.JetStream().Publish(t.Context(), b.Subject(orders.DeadLetter()), []byte("garbage")); err != nil {
		t.Fatalf("publish garbage: %v", err)
	}
	dlDead(t, b, bs, "b1")
	dlDead(t, b, orders, "o3", "o4")
	dlDead(t, b, a, "a2")
	dlDead(t, b, orders, "o5")
	return b
}
