package broker

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
)

const euroPlain, euroEncoded = "Euro € 😀", "Euro%20%E2%82%AC%20%F0%9F%98%80"

func TestEncodeHeaders(t *testing.T) {
	ev := testEvent(t, "1")
	ev.SetSubject(euroPlain)
	ev.SetExtension("greeting", euroPlain)
	msg := Encode("events.orders.created", Message{Topic: "orders.created", Event: ev, MsgID: "key-1", Fingerprint: "fp-1",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "congo=t61rcWkgMzE"})

	want := map[string]string{
		"ce-specversion":     "1.0",
		"ce-id":              "1",
		"ce-source":          "/eventsidecar/test",
		"ce-type":            "com.example.order.created",
		"ce-datacontenttype": "application/json",
		"ce-dataschema":      "https://example.com/schema.json",
		"ce-subject":         euroEncoded,
		"ce-time":            "2024-05-06T07:08:09.123456789Z",
		"ce-partitionkey":    "customer-7",
		"ce-priority":        "3",
		"ce-greeting":        euroEncoded,
		"Nats-Msg-Id":        "key-1",
		FingerprintHeader:    "fp-1",
		"traceparent":        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"tracestate":         "congo=t61rcWkgMzE",
	}
	for name, value := range want {
		t.Run(name, func(t *testing.T) {
			if got := msg.Header.Values(name); len(got) != 1 || got[0] != value {
				t.Errorf("header %q = %q, want [%q]", name, got, value)
			}
		})
	}
	if len(msg.Header) != len(want) {
		t.Errorf("headers = %v, want exactly %d", msg.Header, len(want))
	}
	if msg.Subject != "events.orders.created" || !bytes.Equal(msg.Data, ev.Data()) {
		t.Errorf("subject %q data %q, want events.orders.created and %q", msg.Subject, msg.Data, ev.Data())
	}
}

func TestEncodeOmitsEmptyKeyAndFingerprint(t *testing.T) {
	msg := Encode("events.a", Message{Topic: "a", Event: testEvent(t, "1")})
	for _, name := range []string{"Nats-Msg-Id", FingerprintHeader} {
		if _, ok := msg.Header[name]; ok {
			t.Errorf("header %q present, want absent", name)
		}
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	withoutData := event.New()
	withoutData.SetID("2")
	withoutData.SetSource("/s")
	withoutData.SetType("t")
	vector := testEvent(t, "3")
	vector.SetSubject(euroPlain)
	vector.SetExtension("greeting", euroPlain)
	// sdk-go's setters trim white space; a value as sent keeps it.
	spaced, subject := event.New(), " s "
	spaced.Context = &event.EventContextV1{ID: " 4 ", Type: "t ", Source: withoutData.Context.AsV1().Source,
		Subject: &subject, Extensions: map[string]any{"greeting": " hi "}}
	tests := []struct {
		name string
		ev   *event.Event
	}{
		{"all attributes", testEvent(t, "1")},
		{"no data", &withoutData},
		{"percent-encoding vector", vector},
		{"white space kept", &spaced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(Encode("events.a", Message{Topic: "a", Event: tt.ev}))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if a, b := attributes(&got), attributes(tt.ev); !slices.Equal(a, b) {
				t.Errorf("attributes = %q, want %q", a, b)
			}
			if !bytes.Equal(got.Data(), tt.ev.Data()) {
				t.Errorf("data = %q, want %q", got.Data(), tt.ev.Data())
			}
		})
	}
}

func TestDecodeStructured(t *testing.T) {
	ev := testEvent(t, "1")
	body, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(&nats.Msg{Subject: "events.a", Data: body})
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got.ID() != "1" || got.Type() != ev.Type() {
		t.Errorf("decoded id %q type %q, want 1 and %q", got.ID(), got.Type(), ev.Type())
	}
}

func TestDecodeInvalid(t *testing.T) {
	valid := func() nats.Header {
		return nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"1"}, "ce-source": {"/s"}, "ce-type": {"t"}}
	}
	tests := []struct {
		name   string
		change func(h nats.Header)
	}{
		{"missing id", func(h nats.Header) { delete(h, "ce-id") }},
		{"missing type", func(h nats.Header) { delete(h, "ce-type") }},
		{"unsupported specversion", func(h nats.Header) { h.Set("ce-specversion", "0.3") }},
		{"bad percent-encoding", func(h nats.Header) { h.Set("ce-subject", "a%zz") }},
		{"invalid UTF-8", func(h nats.Header) { h.Set("ce-subject", "%C3%28") }},
		{"bad time", func(h nats.Header) { h.Set("ce-time", "yesterday") }},
		{"bad extension name", func(h nats.Header) { h.Set("ce-Bad_Name", "x") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := valid()
			tt.change(h)
			if _, err := Decode(&nats.Msg{Subject: "events.a", Header: h}); !errors.Is(err, ErrInvalidMessage) {
				t.Errorf("Decode error = %v, want ErrInvalidMessage", err)
			}
		})
	}
	t.Run("not JSON without specversion", func(t *testing.T) {
		if _, err := Decode(&nats.Msg{Subject: "events.a", Data: []byte("hello")}); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("Decode error = %v, want ErrInvalidMessage", err)
		}
	})
	t.Run("valid", func(t *testing.T) {
		if _, err := Decode(&nats.Msg{Subject: "events.a", Header: valid()}); err != nil {
			t.Errorf("Decode: %v", err)
		}
	})
}
