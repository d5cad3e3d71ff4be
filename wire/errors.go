package wire

import (
	"errors"
	"fmt"
	"strings"

	"github.com/eventsidecar/eventsidecar/internal/clip"
)

// ErrUnsupportedMediaType is returned by DetectMode for a CloudEvents
// content type other than application/cloudevents+json and
// application/cloudevents-batch+json (for example
// application/cloudevents+xml). The HTTP layer answers 415.
var ErrUnsupportedMediaType = errors.New("wire: unsupported media type")

// ErrTooManyEvents is wrapped by the error DecodeBatch returns when a batch
// holds more events than allowed. The HTTP layer answers 413.
var ErrTooManyEvents = errors.New("wire: too many events in batch")

// ErrInvalidHeader is returned for a header value that is not a valid
// percent-encoded UTF-8 string.
var ErrInvalidHeader = errors.New("wire: invalid header value")

// ErrInvalidMessage is wrapped by DecodeNATS's errors: the NATS message is
// not a valid CloudEvent.
var ErrInvalidMessage = errors.New("wire: not a valid CloudEvents message")

// FieldError says which attribute (or header, or JSON member) of an event is
// wrong and why. Every decoding and validation failure of the HTTP and
// protobuf decoders and of Validate, except the sentinel errors, is a
// *FieldError. A FieldError is a plain value: once returned it is owned by
// the caller and safe to share.
type FieldError struct {
	// Index is the event's position in a batch; -1 for a single event.
	Index int
	// Field names the attribute ("source"), header ("ce-foo",
	// "Content-Type") or JSON member ("data_base64") that is wrong; it is ""
	// when the event or the body as a whole is (not JSON, not an object).
	Field string
	// Reason says what is wrong, in words, e.g. "must be an absolute URI".
	Reason string
}

// Error formats the error as "[index] field: reason", leaving out the index
// of a single event and the field when there is none.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Index >= 0 {
		fmt.Fprintf(&b, "[%d] ", e.Index)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// maxFieldLen bounds the length of a FieldError's Field: a field can be a
// name the client sent, and errors are echoed back to it.
const maxFieldLen = 64

// fieldErr returns a *FieldError for a single event.
func fieldErr(field, reason string) *FieldError {
	if len(field) > maxFieldLen {
		field = clip.UTF8(field, maxFieldLen) + "…"
	}
	return &FieldError{Index: -1, Field: field, Reason: reason}
}
