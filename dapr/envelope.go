package dapr

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/google/uuid"

	"github.com/eventsidecar/eventsidecar/wire"
)

// The attributes Dapr gives the events it wraps.
const (
	// DefaultType is the type of a wrapped publish, and of a CloudEvent
	// body without one.
	DefaultType = "com.dapr.event.sent"
	// DefaultSource is the source of a CloudEvent body without one.
	DefaultSource = "Dapr"
	// DefaultContentType is the datacontenttype of a publish without a
	// content type.
	DefaultContentType = "text/plain"
	// ExpirationExtension is the extension a publish's ttl sets: when it
	// ends, RFC 3339 in UTC to the second.
	ExpirationExtension = "expiration"
)

// The distributed tracing extension's attributes, which trace overrides
// set.
const (
	extTraceParent = "traceparent"
	extTraceState  = "tracestate"
)

// envelopeOnly are members of Dapr's envelope that the sidecar does not
// store: the delivery of a Dapr subscription adds them.
var envelopeOnly = []string{"topic", "pubsubname", "traceid"}

// IsCloudEvent reports whether a publish's content type (any case,
// parameters allowed) is application/cloudevents+json, whose body is the
// event itself.
func IsCloudEvent(contentType string) bool {
	return wire.MediaType(contentType) == wire.StructuredMediaType
}

// Wrap returns the event that a Dapr publish of body with contentType by
// the app appID stores, under Dapr's rules but with storage native: the
// event is an ordinary CloudEvent, and Dapr's envelope is written only
// when a Dapr subscription is delivered.
//
//   - application/cloudevents+json: the body is the event (decoded as a
//     structured CloudEvent, so stricter than Dapr), with source "Dapr"
//     and type com.dapr.event.sent when it has none; md's cloudevent.*
//     overrides are ignored, as in Dapr; the envelope members topic,
//     pubsubname and traceid are dropped, traceid becoming the
//     traceparent extension when there is none.
//   - anything else: a new event with a new UUID as id, source appID,
//     type com.dapr.event.sent, datacontenttype contentType (default
//     text/plain) and the body, byte for byte, as data (none when empty);
//     md's overrides (see Metadata.Overrides) set id, source, type,
//     subject, and the traceparent and tracestate extensions.
//
// md's ttl sets the expiration extension to now + ttl. No time is set:
// the publish path sets the time of receipt, so that a resend with the
// same cloudevent.id is a duplicate, not a conflict. Errors are *Error:
// CodeRequestMetadata for a bad ttl, CodeCloudEventCreation for a
// CloudEvent body that is not a JSON object, CodeInvalidEvent for one that
// is not a valid event or for a bad override. The event does not share
// body's memory.
func Wrap(appID, contentType string, body []byte, md Metadata) (event.Event, error) {
	ttl, hasTTL, err := md.TTL()
	if err != nil {
		return event.Event{}, &Error{Code: CodeRequestMetadata, Cause: err.Error()}
	}
	var ev event.Event
	if IsCloudEvent(contentType) {
		ev, err = fromCloudEvent(body)
	} else {
		ev, err = envelope(appID, contentType, bytes.Clone(body), md.Overrides())
	}
	if err != nil {
		return event.Event{}, err
	}
	if hasTTL {
		ev.SetExtension(ExpirationExtension, expiration(ttl))
	}
	return ev, nil
}

// expiration is now + ttl in RFC 3339, UTC, to the second.
func expiration(ttl time.Duration) string {
	return time.Now().UTC().Add(ttl).Format(time.RFC3339)
}

// fromCloudEvent decodes a CloudEvent body and gives it Dapr's defaults.
func fromCloudEvent(body []byte) (event.Event, error) {
	if !isObject(body) {
		return event.Event{}, &Error{Code: CodeCloudEventCreation, Cause: "the body is not a JSON object"}
	}
	body, traceID := withoutEnvelope(body)
	ev, err := wire.DecodeStructured(body)
	if err != nil {
		return event.Event{}, &Error{Code: CodeInvalidEvent, Cause: err.Error()}
	}
	if ev.Source() == "" {
		ev.SetSource(DefaultSource)
	}
	if ev.Type() == "" {
		ev.SetType(DefaultType)
	}
	if traceID != "" && ev.Extensions()[extTraceParent] == nil {
		ev.SetExtension(extTraceParent, traceID)
	}
	return ev, nil
}

// withoutEnvelope returns the JSON object body without the members of
// Dapr's envelope that are not stored (envelopeOnly) and without an empty
// traceparent or tracestate (Dapr writes "tracestate":""), keeping every
// other member as sent, and the traceid member's value when it is a
// string. A body it cannot read is returned as it is, for the decoder to
// refuse.
func withoutEnvelope(body []byte) ([]byte, string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil {
		return body, ""
	}
	var out bytes.Buffer
	out.WriteByte('{')
	var traceID string
	for dec.More() {
		tok, err := dec.Token()
		var v json.RawMessage
		if err == nil {
			err = dec.Decode(&v)
		}
		name, _ := tok.(string)
		if err != nil {
			return body, ""
		}
		if name == "traceid" {
			_ = json.Unmarshal(v, &traceID)
		}
		if slices.Contains(envelopeOnly, name) || ((name == extTraceParent || name == extTraceState) && string(v) == `""`) {
			continue
		}
		if out.Len() > 1 {
			out.WriteByte(',')
		}
		key, _ := json.Marshal(name)
		out.Write(key)
		out.WriteByte(':')
		out.Write(v)
	}
	out.WriteByte('}')
	return out.Bytes(), traceID
}

// isObject reports whether body is one JSON value, an object.
func isObject(body []byte) bool {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(body)
}

// envelope is the event Dapr's envelope of a body that is not a
// CloudEvent stands for.
func envelope(appID, contentType string, body []byte, o Overrides) (event.Event, error) {
	ec := &event.EventContextV1{
		ID:              orDefault(o.ID, newID()),
		Type:            orDefault(o.Type, DefaultType),
		DataContentType: ptr(orDefault(contentType, DefaultContentType)),
	}
	src, err := url.Parse(orDefault(o.Source, appID))
	if err != nil {
		return event.Event{}, &Error{Code: CodeInvalidEvent, Cause: fmt.Sprintf("cloudevent.source: %v", err)}
	}
	ec.Source = types.URIRef{URL: *src}
	if o.Subject != "" {
		ec.Subject = ptr(o.Subject)
	}
	ev := event.New()
	ev.Context = ec
	if len(body) > 0 {
		ev.DataEncoded = body
	}
	for name, v := range map[string]string{extTraceParent: o.TraceParent, extTraceState: o.TraceState} {
		if v != "" {
			ev.SetExtension(name, v)
		}
	}
	return ev, nil
}

// Raw returns the event a publish with rawPayload stores: the body as
// data, byte for byte, with datacontenttype contentType when given, as the
// sidecar's own raw publish makes it (type eventsidecar.raw, a new UUID as
// id, source the app's default source). Dapr publishes the bytes alone;
// the event around them is what lets native subscribers read them. The
// error is a *Error of CodeInvalidEvent for a content type that is not one.
func Raw(source, contentType string, body []byte) (event.Event, error) {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	ev, err := wire.DecodeRaw(h, bytes.Clone(body))
	if err != nil {
		return event.Event{}, &Error{Code: CodeInvalidEvent, Cause: err.Error()}
	}
	ev.SetID(newID())
	ev.SetSource(source)
	return ev, nil
}

// newID is a new event id: a UUID v7, as the sidecar's own raw publishes
// get.
func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

func orDefault(v, dflt string) string {
	if v == "" {
		return dflt
	}
	return v
}

func ptr(s string) *string { return &s }
