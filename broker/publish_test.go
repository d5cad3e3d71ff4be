package broker

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	natsjs "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/wire"
)

// publishOne publishes one message and fails the test unless it is stored.
func publishOne(t *testing.T, c *Client, m Message) Receipt {
	t.Helper()
	rs := c.Publish(t.Context(), []Message{m})
	if len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("Publish = %+v, want one stored receipt", rs)
	}
	return rs[0]
}

// readFirst reads the stream's first message with a plain ordered consumer.
func readFirst(t *testing.T, c *Client) *nats.Msg {
	t.Helper()
	cons, err := c.JetStream().OrderedConsumer(t.Context(), c.Stream(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("OrderedConsumer: %v", err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}
}

func TestPublishReadBack(t *testing.T) {
	c := open(t, testConfig(t))
	ev := testEvent(t, "1")
	r := publishOne(t, c, Message{Topic: "orders.created", Event: ev, MsgID: "k1", Fingerprint: "f1"})
	if r.Sequence != 1 || r.Duplicate {
		t.Fatalf("receipt = %+v, want sequence 1, not duplicate", r)
	}
	msg := readFirst(t, c)
	if msg.Subject != "events.orders.created" {
		t.Errorf("subject = %q, want events.orders.created", msg.Subject)
	}
	readers := []struct {
		name string
		read func(*nats.Msg) (*event.Event, error)
	}{
		{"DecodeNATS", func(m *nats.Msg) (*event.Event, error) {
			got, err := wire.DecodeNATS(m.Header, m.Data)
			return &got, err
		}},
		{"sdk-go nats_jetstream", func(m *nats.Msg) (*event.Event, error) {
			return binding.ToEvent(context.Background(), natsjs.NewMessage(m))
		}},
	}
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			got, err := rd.read(msg)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if a, b := attributes(got), attributes(ev); !slices.Equal(a, b) {
				t.Errorf("attributes = %q, want %q", a, b)
			}
			if !bytes.Equal(got.Data(), ev.Data()) {
				t.Errorf("data = %q, want %q", got.Data(), ev.Data())
			}
		})
	}
}

func TestPublishPercentEncodingVector(t *testing.T) {
	c := open(t, testConfig(t))
	ev := testEvent(t, "1")
	ev.SetSubject(euroPlain)
	ev.SetExtension("greeting", euroPlain)
	r := publishOne(t, c, Message{Topic: "orders.created", Event: ev, MsgID: "k1"})
	raw, err := c.setup.lastStream().GetMsg(t.Context(), r.Sequence)
	if err != nil {
		t.Fatalf("GetMsg: %v", err)
	}
	for _, name := range []string{"ce-subject", "ce-greeting"} {
		if got := raw.Header.Get(name); got != euroEncoded {
			t.Errorf("stored %s = %q, want %q", name, got, euroEncoded)
		}
	}
	got, err := wire.DecodeNATS(raw.Header, raw.Data)
	if err != nil {
		t.Fatalf("DecodeNATS: %v", err)
	}
	if got.Subject() != euroPlain || got.Extensions()["greeting"] != euroPlain {
		t.Errorf("decoded subject %q greeting %v, want %q", got.Subject(), got.Extensions()["greeting"], euroPlain)
	}
}

func TestPublishBatchPipelined(t *testing.T) {
	c := open(t, testConfig(t))
	rs := c.Publish(t.Context(), messages(t, 100))
	if len(rs) != 100 {
		t.Fatalf("got %d receipts, want 100", len(rs))
	}
	var last uint64
	for i, r := range rs {
		if r.Err != nil || r.Duplicate || r.Sequence <= last {
			t.Fatalf("receipt %d = %+v, want stored with a sequence above %d", i, r, last)
		}
		last = r.Sequence
	}
	if n := streamMsgs(t, c); n != 100 {
		t.Errorf("stream holds %d messages, want 100", n)
	}
}

func TestPublishDuplicate(t *testing.T) {
	c := open(t, testConfig(t))
	first := publishOne(t, c, Message{Topic: "orders.created", Event: testEvent(t, "1"), MsgID: "k1", Fingerprint: "first"})
	tests := []struct {
		name        string
		fingerprint string
	}{
		{"same event", "first"},
		{"different event", "second"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := publishOne(t, c, Message{Topic: "orders.created", Event: testEvent(t, "resent"), MsgID: "k1", Fingerprint: tt.fingerprint})
			want := Receipt{Sequence: first.Sequence, Duplicate: true, Fingerprint: "first", ID: "1", Source: "/eventsidecar/test"}
			if r != want {
				t.Errorf("receipt = %+v, want %+v", r, want)
			}
		})
	}
	if n := streamMsgs(t, c); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}

func TestPublishOverloaded(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxPending = 2
	c := open(t, cfg)
	for i, r := range c.Publish(t.Context(), messages(t, 3)) {
		if !errors.Is(r.Err, ErrOverloaded) || r.Sequence != 0 {
			t.Errorf("receipt %d = %+v, want ErrOverloaded", i, r)
		}
	}
	if n := streamMsgs(t, c); n != 0 {
		t.Errorf("stream holds %d messages, want 0", n)
	}
	for i, r := range c.Publish(t.Context(), messages(t, 2)) {
		if r.Err != nil {
			t.Errorf("receipt %d of a batch within max_pending = %+v, want stored", i, r)
		}
	}
}

func TestPublishEmpty(t *testing.T) {
	c := open(t, testConfig(t))
	if rs := c.Publish(t.Context(), nil); len(rs) != 0 {
		t.Errorf("Publish(nil) = %+v, want no receipts", rs)
	}
}

func TestPublishCanceledContext(t *testing.T) {
	c := open(t, testConfig(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for i, r := range c.Publish(ctx, messages(t, 3)) {
		if r.Err != nil && !errors.Is(r.Err, context.Canceled) {
			t.Errorf("receipt %d = %+v, want stored or context.Canceled", i, r)
		}
	}
	// Every slot comes back once the broker has answered.
	waitFor(t, 5*time.Second, "slots released", func() error {
		if !c.slots.TryAcquire(int64(c.cfg.MaxPending)) {
			return errors.New("slots still held")
		}
		c.slots.Release(int64(c.cfg.MaxPending))
		return nil
	})
}
