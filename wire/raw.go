package wire

import (
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"
)

// RawType is the type DecodeRaw gives an event when the request has no
// ce-type header.
const RawType = "eventsidecar.raw"

// DecodeRaw makes an event of a raw request: data = body (no data when the
// body is empty), type = the percent-decoded ce-type header or RawType,
// datacontenttype = Content-Type when given. It sets no id, source or time:
// the caller does. Errors are *FieldError naming the header. The event's
// data shares body's memory; the caller must not modify body afterwards.
// DecodeRaw only reads h and is safe for concurrent use.
func DecodeRaw(h http.Header, body []byte) (event.Event, error) {
	ec := &event.EventContextV1{Type: RawType}
	t, ok, ferr := singleHeader(h, HeaderPrefix+"type")
	if ferr != nil {
		return event.Event{}, ferr
	}
	if ok {
		if ec.Type, ferr = decodeAttributeHeader("type", t); ferr != nil {
			return event.Event{}, ferr
		}
		if ec.Type == "" {
			return event.Event{}, fieldErr("ce-type", "must not be empty when present")
		}
	}
	if ec.DataContentType, ferr = contentType(h); ferr != nil {
		return event.Event{}, ferr
	}
	return newEvent(ec, body), nil
}
