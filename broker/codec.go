package broker

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/headers"
)

// FingerprintHeader is the NATS header carrying a Message's Fingerprint, so
// that a duplicate can be compared with the stored original.
const FingerprintHeader = "Eventsidecar-Fingerprint"

// The NATS headers carrying an event's W3C trace context.
const (
	TraceParentHeader = "traceparent"
	TraceStateHeader  = "tracestate"
)

// ErrInvalidMessage is wrapped by Decode's errors: the NATS message is not a
// valid CloudEvent.
var ErrInvalidMessage = errors.New("broker: not a valid CloudEvents message")

const specVersionHeader = headers.Prefix + "specversion"

// Encode returns the NATS message storing m on subject in the CloudEvents
// NATS binding's binary content mode: every attribute, datacontenttype
// included, as a lower-case "ce-<name>" header with its value
// percent-encoded, the data as the payload, m.MsgID as Nats-Msg-Id and
// m.Fingerprint as FingerprintHeader, and the trace context as
// TraceParentHeader and TraceStateHeader (each when not empty). The payload
// aliases m.Event's data.
func Encode(subject string, m Message) *nats.Msg {
	msg := nats.NewMsg(subject)
	// nats.Header.Set keeps the key's case: the names stay lower-case.
	headers.Each(m.Event, func(name, value string) {
		msg.Header.Set(headers.Prefix+name, headers.Encode(value))
	})
	if m.MsgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, m.MsgID)
	}
	if m.Fingerprint != "" {
		msg.Header.Set(FingerprintHeader, m.Fingerprint)
	}
	if m.TraceParent != "" {
		msg.Header.Set(TraceParentHeader, m.TraceParent)
	}
	if m.TraceState != "" {
		msg.Header.Set(TraceStateHeader, m.TraceState)
	}
	msg.Data = m.Event.Data()
	return msg
}

// Decode is the inverse of Encode: it builds the event from the lower-case
// "ce-" headers (percent-decoded, each set with headers.Set: values as
// they stand, time parsed, other names extensions with string values) and
// the payload as data, which the event aliases. A message without a
// ce-specversion header is read as a structured-mode JSON event, as
// cloudevents/sdk-go does. Errors wrap ErrInvalidMessage.
func Decode(msg *nats.Msg) (event.Event, error) {
	switch v := msg.Header.Get(specVersionHeader); v {
	case "":
		return decodeStructured(msg.Data)
	case event.CloudEventsVersionV1:
	default:
		return event.Event{}, fmt.Errorf("%w: unsupported specversion %q", ErrInvalidMessage, v)
	}
	ec := &event.EventContextV1{}
	for key, values := range msg.Header {
		name, ok := strings.CutPrefix(key, headers.Prefix)
		if !ok || name == "" || name == "specversion" || len(values) == 0 {
			continue
		}
		value, err := headers.Decode(values[0])
		if err != nil {
			return event.Event{}, fmt.Errorf("%w: header %q: %v", ErrInvalidMessage, key, err)
		}
		if err := headers.Set(ec, name, value); err != nil {
			return event.Event{}, fmt.Errorf("%w: header %q: %v", ErrInvalidMessage, key, err)
		}
	}
	ev := event.New()
	ev.Context = ec
	if len(msg.Data) > 0 {
		ev.DataEncoded = msg.Data
	}
	if err := ev.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	return ev, nil
}

func decodeStructured(data []byte) (event.Event, error) {
	var ev event.Event
	if err := ev.UnmarshalJSON(data); err != nil {
		return event.Event{}, fmt.Errorf("%w: no ce-specversion header and not a structured event: %v", ErrInvalidMessage, err)
	}
	if err := ev.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	return ev, nil
}
