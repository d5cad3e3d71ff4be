package wire

import (
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
)

// specVersionHeader is the attribute header that tells a binary-mode NATS
// message from a structured one.
const specVersionHeader = HeaderPrefix + "specversion"

// EncodeNATS returns ev in the CloudEvents NATS binding's binary content
// mode: every attribute, datacontenttype included, as a lower-case
// "ce-<name>" header with its value percent-encoded, and the data as the
// payload, which aliases ev's data. The caller owns the header and may add
// its own to it (it has room for natsRoom more).
func EncodeNATS(ev *event.Event) (nats.Header, []byte) {
	h := make(nats.Header, natsRoom+8+len(extensions(ev)))
	values := make([]string, 0, 8)
	// Like nats.Header.Set, the header keeps the key's case: the names stay
	// lower-case. The values share one array.
	EachAttribute(ev, func(name, value string) {
		values = append(values, EncodeHeader(value))
		n := len(values)
		h[attributeHeaderName(name)] = values[n-1 : n : n]
	})
	return h, ev.Data()
}

// natsRoom is the room EncodeNATS leaves in its header for the caller's.
const natsRoom = 4

// attributeHeaderNames are the ce- header names of the attributes every
// event has or many do.
var attributeHeaderNames = map[string]string{
	"specversion": HeaderPrefix + "specversion", "id": HeaderPrefix + "id", "source": HeaderPrefix + "source",
	"type": HeaderPrefix + "type", "datacontenttype": HeaderPrefix + "datacontenttype",
	"dataschema": HeaderPrefix + "dataschema", "subject": HeaderPrefix + "subject", "time": HeaderPrefix + "time",
	"traceparent": HeaderPrefix + "traceparent", "tracestate": HeaderPrefix + "tracestate",
	"partitionkey": HeaderPrefix + "partitionkey",
}

// attributeHeaderName is the ce- header name of the attribute name.
func attributeHeaderName(name string) string {
	if h, ok := attributeHeaderNames[name]; ok {
		return h
	}
	return HeaderPrefix + name
}

// DecodeNATS is the inverse of EncodeNATS: it builds the event from the
// lower-case "ce-" headers of h (percent-decoded, each stored as it stands:
// time parsed, other names extensions with string values) and data, which
// the event aliases. A message without a ce-specversion header is read as a
// structured-mode JSON event, as cloudevents/sdk-go does. The event must
// pass sdk-go's validation. Errors wrap ErrInvalidMessage. DecodeNATS only
// reads h and is safe for concurrent use.
func DecodeNATS(h nats.Header, data []byte) (event.Event, error) {
	switch v := h.Get(specVersionHeader); v {
	case "":
		return decodeNATSStructured(data)
	case event.CloudEventsVersionV1:
	default:
		return event.Event{}, fmt.Errorf("%w: unsupported specversion %q", ErrInvalidMessage, v)
	}
	ec := &event.EventContextV1{}
	for key, values := range h {
		name, ok := strings.CutPrefix(key, HeaderPrefix)
		if !ok || name == "" || name == "specversion" || len(values) == 0 {
			continue
		}
		value, err := DecodeHeader(values[0])
		if err != nil {
			return event.Event{}, fmt.Errorf("%w: header %q: %v", ErrInvalidMessage, key, err)
		}
		if err := storeAttribute(ec, name, value); err != nil {
			return event.Event{}, fmt.Errorf("%w: header %q: %v", ErrInvalidMessage, key, err)
		}
	}
	ev := newEvent(ec, data)
	if err := ev.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	return ev, nil
}

// decodeNATSStructured reads the payload of a NATS message without a
// ce-specversion header as one event in the JSON format, with sdk-go.
func decodeNATSStructured(data []byte) (event.Event, error) {
	var ev event.Event
	if err := ev.UnmarshalJSON(data); err != nil {
		return event.Event{}, fmt.Errorf("%w: no ce-specversion header and not a structured event: %v", ErrInvalidMessage, err)
	}
	if err := ev.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	return ev, nil
}
