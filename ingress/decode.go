package ingress

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventsidecar/eventsidecar/headers"
)

// Mode is how a publish request carries its events.
type Mode int

// The modes of contract §4.1.
const (
	// ModeRaw: the body is the data of a new event the sidecar makes up.
	ModeRaw Mode = iota
	// ModeBinary: one event, attributes in ce- headers, data in the body.
	ModeBinary
	// ModeStructured: one event as application/cloudevents+json.
	ModeStructured
	// ModeBatch: a JSON array of events as application/cloudevents-batch+json.
	ModeBatch
)

// RawType is the type DecodeRaw gives an event when the request has no
// ce-type header.
const RawType = "eventsidecar.raw"

// String returns "raw", "binary", "structured" or "batch".
func (m Mode) String() string {
	switch m {
	case ModeRaw:
		return "raw"
	case ModeBinary:
		return "binary"
	case ModeStructured:
		return "structured"
	case ModeBatch:
		return "batch"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// DetectMode applies the CloudEvents HTTP binding's rules to the request
// headers h. Content-Type is matched case-insensitively and with any
// parameters: application/cloudevents+json is ModeStructured,
// application/cloudevents-batch+json is ModeBatch, and any other
// application/cloudevents or application/cloudevents-batch type (with or
// without a +suffix) is an error wrapping ErrUnsupportedMediaType.
// Otherwise a ce-specversion header makes ModeBinary, and anything else is
// ModeRaw. DetectMode only reads h and is safe for concurrent use.
func DetectMode(h http.Header) (Mode, error) {
	var ct string
	if vs := headerValues(h, "Content-Type"); len(vs) > 0 {
		ct = vs[0]
	}
	switch mt := headers.MediaType(ct); {
	case mt == "application/cloudevents+json":
		return ModeStructured, nil
	case mt == "application/cloudevents-batch+json":
		return ModeBatch, nil
	case isCloudEventsFormat(mt):
		return ModeRaw, fmt.Errorf("%w: %q", ErrUnsupportedMediaType, mt)
	}
	if len(headerValues(h, headers.Prefix+"specversion")) > 0 {
		return ModeBinary, nil
	}
	return ModeRaw, nil
}

func isCloudEventsFormat(mt string) bool {
	for _, base := range [...]string{"application/cloudevents", "application/cloudevents-batch"} {
		if mt == base || strings.HasPrefix(mt, base+"+") {
			return true
		}
	}
	return false
}

// DecodeRaw makes an event of a raw request: data = body (no data when the
// body is empty), type = the percent-decoded ce-type header or RawType,
// datacontenttype = Content-Type when given. It sets no id, source or time:
// the caller does. Errors are *FieldError naming the header. The event's
// data shares body's memory; the caller must not modify body afterwards.
// DecodeRaw only reads h and is safe for concurrent use.
func DecodeRaw(h http.Header, body []byte) (event.Event, error) {
	ec := &event.EventContextV1{Type: RawType}
	t, ok, ferr := singleHeader(h, headers.Prefix+"type")
	if ferr != nil {
		return event.Event{}, ferr
	}
	if ok {
		if ec.Type, ferr = decodeHeader("ce-type", t); ferr != nil {
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

// newEvent wraps ec in an event whose data is body, or no data when body is
// empty.
func newEvent(ec *event.EventContextV1, body []byte) event.Event {
	ev := event.New()
	ev.Context = ec
	if len(body) > 0 {
		ev.DataEncoded = body
	}
	return ev
}

// setAttribute stores the string value v of the attribute name (already
// checked to be a valid name) in ec with headers.Set, as sent: unlike the
// sdk-go setters it does not trim white space. It first refuses what the
// model would lose (valueReason). It returns the reason or "".
func setAttribute(ec *event.EventContextV1, name, v string) string {
	if r := valueReason(name, v); r != "" {
		return r
	}
	if err := headers.Set(ec, name, v); err != nil {
		return err.Error()
	}
	return ""
}

// valueReason says why v cannot be the value of the attribute name, or
// "": a specversion other than "1.0", an empty optional attribute (the
// model cannot tell it from an absent one), a source or dataschema that is
// not a URI-reference (the model keeps only url.Parse's reading of it), a
// datacontenttype that is not a media type, a time that is not RFC 3339.
func valueReason(name, v string) string {
	switch name {
	case "specversion":
		if v != specVersion {
			return fmt.Sprintf("must be %q", specVersion)
		}
		return ""
	case "id", "type":
		return ""
	case "source":
		return uriRefReason(v)
	}
	switch {
	case v == "":
		return "must not be empty when present"
	case name == "datacontenttype":
		return mediaTypeReason(v)
	case name == "dataschema":
		return uriRefReason(v)
	case name == "time":
		_, r := parseTime(v)
		return r
	}
	return ""
}

func setExtension(ec *event.EventContextV1, name string, v any) {
	if ec.Extensions == nil {
		ec.Extensions = make(map[string]any)
	}
	ec.Extensions[name] = v
}
