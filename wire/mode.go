package wire

import (
	"fmt"
	"net/http"
)

// Mode is how an HTTP request carries its events: in a content mode of the
// CloudEvents HTTP binding, or as a raw body.
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
	switch mt := MediaType(ct); {
	case mt == StructuredMediaType:
		return ModeStructured, nil
	case mt == BatchMediaType:
		return ModeBatch, nil
	case isCloudEventsFormat(mt):
		return ModeRaw, fmt.Errorf("%w: %q", ErrUnsupportedMediaType, mt)
	}
	if len(headerValues(h, HeaderPrefix+"specversion")) > 0 {
		return ModeBinary, nil
	}
	return ModeRaw, nil
}
