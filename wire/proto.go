package wire

import (
	"fmt"

	ceprotobuf "github.com/cloudevents/sdk-go/binding/format/protobuf/v2"
	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// ProtoTextType is the datacontenttype of an event whose data came as
// text_data without one: the text is stored as its UTF-8 bytes.
const ProtoTextType = "text/plain; charset=utf-8"

// DecodeProto converts an event of the CloudEvents protobuf format (as the
// gRPC API receives it) as strictly as the HTTP decoders do, where sdk-go's
// FromProto drops bad attributes and re-encodes text data. spec_version
// must be "1.0" and source a URI-reference. The attributes map holds the
// optional context attributes and the extensions: a name must be a valid
// attribute name and not one of the message's own fields (id, source,
// spec_version, type), a value must be set; datacontenttype and subject are
// ce_string values, dataschema a ce_uri and time a ce_timestamp (or their
// canonical ce_string forms); an extension keeps its type, a ce_uri must be
// absolute, a ce_uri_ref a URI-reference, a timestamp within the years
// 0000-9999, bytes not empty. binary_data is the data byte for byte;
// text_data is the data as the text's bytes, never re-encoded (JSON text
// stays that JSON), with datacontenttype ProtoTextType when none is given;
// proto_data is the Any's value, application/protobuf unless a
// datacontenttype is given. Missing id, source and type and the remaining
// rules are left to Validate. Errors are *FieldError with Index -1 naming
// the attribute. The event's data shares p's memory; the caller must not
// modify p afterwards. DecodeProto only reads p and is safe for concurrent
// use.
func DecodeProto(p *pb.CloudEvent) (event.Event, error) {
	ec := &event.EventContextV1{ID: p.GetId(), Type: p.GetType()}
	if p.GetSpecVersion() == "" {
		return event.Event{}, fieldErr("specversion", "is required")
	}
	if r := setAttribute(ec, "specversion", p.GetSpecVersion()); r != "" {
		return event.Event{}, fieldErr("specversion", r)
	}
	if src := p.GetSource(); src != "" {
		if r := setAttribute(ec, "source", src); r != "" {
			return event.Event{}, fieldErr("source", r)
		}
	}
	if ferr := protoAttributes(ec, p.GetAttributes()); ferr != nil {
		return event.Event{}, ferr
	}
	data, implied := protoData(p)
	if ec.DataContentType == nil && len(data) > 0 && implied != "" {
		ec.DataContentType = &implied
	}
	return newEvent(ec, data), nil
}

// protoData returns an event's data and the datacontenttype its kind
// implies ("" for binary_data).
func protoData(p *pb.CloudEvent) ([]byte, string) {
	switch d := p.GetData().(type) {
	case *pb.CloudEvent_BinaryData:
		return d.BinaryData, ""
	case *pb.CloudEvent_TextData:
		return []byte(d.TextData), ProtoTextType
	case *pb.CloudEvent_ProtoData:
		return d.ProtoData.GetValue(), ceprotobuf.ContentTypeProtobuf
	}
	return nil, ""
}

// protoAttributes sets the attributes of the map in ec, in name order.
func protoAttributes(ec *event.EventContextV1, attrs map[string]*pb.CloudEventAttributeValue) *FieldError {
	var room [8]string
	for _, name := range sortedNames(attrs, room[:0]) {
		r := protoNameReason(name)
		if r == "" {
			var v any
			if v, r = protoValue(attrs[name]); r == "" {
				r = setProtoAttribute(ec, name, v)
			}
		}
		if r != "" {
			return fieldErr(name, r)
		}
	}
	return nil
}

// protoNameReason says why name cannot be a key of the attributes map, or "".
func protoNameReason(name string) string {
	if requiredAttributes[name] {
		return "is a field of the CloudEvent message, not an entry of its attributes"
	}
	return nameReason(name)
}

// protoValue converts an attribute value to its CloudEvents type, refusing
// what the event model would lose or the stream could not hold.
func protoValue(v *pb.CloudEventAttributeValue) (any, string) {
	switch a := v.GetAttr().(type) {
	case *pb.CloudEventAttributeValue_CeBoolean:
		return a.CeBoolean, ""
	case *pb.CloudEventAttributeValue_CeInteger:
		return a.CeInteger, ""
	case *pb.CloudEventAttributeValue_CeString:
		return a.CeString, ""
	case *pb.CloudEventAttributeValue_CeBytes:
		if len(a.CeBytes) == 0 {
			return nil, "must not be empty when present"
		}
		return a.CeBytes, ""
	case *pb.CloudEventAttributeValue_CeUri:
		u, r := parseAbsURI(a.CeUri)
		if r != "" {
			return nil, r
		}
		return types.URI{URL: *u}, ""
	case *pb.CloudEventAttributeValue_CeUriRef:
		u, r := parseURIRef(a.CeUriRef)
		if r != "" {
			return nil, r
		}
		return types.URIRef{URL: *u}, ""
	case *pb.CloudEventAttributeValue_CeTimestamp:
		if err := a.CeTimestamp.CheckValid(); err != nil {
			return nil, "must be a valid timestamp"
		}
		t := a.CeTimestamp.AsTime()
		return types.Timestamp{Time: t}, timeRangeReason(t)
	}
	return nil, "has no value: set one of its ce_* fields"
}

// setProtoAttribute stores the converted value v of the attribute name in
// ec: a context attribute must have its type (or be its canonical string),
// any other name is an extension of v's type. It returns the reason or "".
func setProtoAttribute(ec *event.EventContextV1, name string, v any) string {
	switch name {
	case "datacontenttype", "subject":
		s, ok := v.(string)
		if !ok {
			return "must be a ce_string value, not " + protoTypeName(v)
		}
		return setAttribute(ec, name, s)
	case "dataschema":
		return setTyped(ec, name, v, func(u types.URI) { ec.DataSchema = &u }, "must be a ce_uri value")
	case "time":
		return setTyped(ec, name, v, func(t types.Timestamp) { ec.Time = &t }, "must be a ce_timestamp value")
	}
	setExtension(ec, name, v)
	return ""
}

// setTyped sets a context attribute given as its type T with set, or as
// its canonical string with setAttribute; else it answers wrongType.
func setTyped[T any](ec *event.EventContextV1, name string, v any, set func(T), wrongType string) string {
	switch v := v.(type) {
	case T:
		set(v)
		return ""
	case string:
		return setAttribute(ec, name, v)
	}
	return fmt.Sprintf("%s, not %s", wrongType, protoTypeName(v))
}

// protoTypeName is the cloudevents.proto field name of a converted value.
func protoTypeName(v any) string {
	switch v.(type) {
	case bool:
		return "ce_boolean"
	case int32:
		return "ce_integer"
	case []byte:
		return "ce_bytes"
	case types.URI:
		return "ce_uri"
	case types.URIRef:
		return "ce_uri_ref"
	case types.Timestamp:
		return "ce_timestamp"
	}
	return "ce_string"
}
