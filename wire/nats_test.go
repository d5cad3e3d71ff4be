package wire

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
)

const euroPlain = "Euro € 😀"

// richEvent is a valid event with every kind of attribute set: the
// required ones (id "1"), subject, dataschema, time, a string and an
// Integer extension, and JSON data.
func richEvent(t *testing.T) *event.Event {
	t.Helper()
	ev, err := DecodeStructured([]byte(obj(`"subject":"order-1","dataschema":"https://example.com/schema.json",` +
		`"time":"2024-05-06T07:08:09.123456789Z","partitionkey":"customer-7","priority":3,` +
		`"datacontenttype":"application/json","data":{"order":"1","total":12.5}`)))
	if err != nil {
		t.Fatalf("DecodeStructured: %v", err)
	}
	if err := Validate(&ev); err != nil {
		t.Fatalf("test event invalid: %v", err)
	}
	return &ev
}

// attributeList lists an event's attributes as name=value in canonical
// string form, in EachAttribute's order.
func attributeList(ev *event.Event) []string {
	var out []string
	EachAttribute(ev, func(name, value string) { out = append(out, name+"="+value) })
	return out
}

// wantSameEvent fails unless got has want's attributes, in canonical
// string form and EachAttribute's order, and want's data.
func wantSameEvent(t *testing.T, got, want *event.Event) {
	t.Helper()
	if a, b := attributeList(got), attributeList(want); !slices.Equal(a, b) {
		t.Errorf("attributes = %q, want %q", a, b)
	}
	if !bytes.Equal(got.Data(), want.Data()) {
		t.Errorf("data = %q, want %q", got.Data(), want.Data())
	}
}

func TestNATSRoundTrip(t *testing.T) {
	withoutData := event.New()
	withoutData.SetID("2")
	withoutData.SetSource("/s")
	withoutData.SetType("t")
	vector := richEvent(t)
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
		{"all attributes", richEvent(t)},
		{"no data", &withoutData},
		{"percent-encoding vector", vector},
		{"white space kept", &spaced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeNATS(EncodeNATS(tt.ev))
			if err != nil {
				t.Fatalf("DecodeNATS: %v", err)
			}
			wantSameEvent(t, &got, tt.ev)
		})
	}
}

func TestDecodeNATSStructured(t *testing.T) {
	ev := richEvent(t)
	body, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeNATS(nil, body)
	if err != nil {
		t.Fatalf("DecodeNATS: %v", err)
	}
	if got.ID() != "1" || got.Type() != ev.Type() {
		t.Errorf("decoded id %q type %q, want 1 and %q", got.ID(), got.Type(), ev.Type())
	}
}

func TestDecodeNATSInvalid(t *testing.T) {
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
			if _, err := DecodeNATS(h, nil); !errors.Is(err, ErrInvalidMessage) {
				t.Errorf("DecodeNATS error = %v, want ErrInvalidMessage", err)
			}
		})
	}
	t.Run("not JSON without specversion", func(t *testing.T) {
		if _, err := DecodeNATS(nil, []byte("hello")); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("DecodeNATS error = %v, want ErrInvalidMessage", err)
		}
	})
	t.Run("valid", func(t *testing.T) {
		if _, err := DecodeNATS(valid(), nil); err != nil {
			t.Errorf("DecodeNATS: %v", err)
		}
	})
}
