package wire

import (
	"maps"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// protoEvent is a valid protobuf event with the given attributes and data.
func protoEvent(attrs map[string]*pb.CloudEventAttributeValue, data any) *pb.CloudEvent {
	ev := &pb.CloudEvent{Id: "p-1", Source: "/shop", SpecVersion: "1.0", Type: "order.created", Attributes: attrs}
	switch d := data.(type) {
	case string:
		ev.Data = &pb.CloudEvent_TextData{TextData: d}
	case []byte:
		ev.Data = &pb.CloudEvent_BinaryData{BinaryData: d}
	case *anypb.Any:
		ev.Data = &pb.CloudEvent_ProtoData{ProtoData: d}
	}
	return ev
}

func ceString(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
}

func ctAttr(ct string) map[string]*pb.CloudEventAttributeValue {
	return map[string]*pb.CloudEventAttributeValue{"datacontenttype": ceString(ct)}
}

func TestDecodeProtoData(t *testing.T) {
	tests := []struct {
		name     string
		ev       *pb.CloudEvent
		ct, data string
	}{
		{"JSON text stays that JSON", protoEvent(ctAttr("application/json"), `{"order":2001}`), "application/json", `{"order":2001}`},
		{"+json text", protoEvent(ctAttr("application/cloudevents-x+json"), `[1,2]`), "application/cloudevents-x+json", `[1,2]`},
		{"text without a content type", protoEvent(nil, "hi"), ProtoTextType, "hi"},
		{"plain text", protoEvent(ctAttr("text/plain"), "hi there"), "text/plain", "hi there"},
		{"XML text", protoEvent(ctAttr("application/xml"), "<a>1</a>"), "application/xml", "<a>1</a>"},
		{"empty text", protoEvent(nil, ""), "", ""},
		{"binary", protoEvent(ctAttr("application/octet-stream"), []byte{0, 0xff}), "application/octet-stream", "\x00\xff"},
		{"binary without a content type", protoEvent(nil, []byte("raw")), "", "raw"},
		{"proto data", protoEvent(nil, &anypb.Any{TypeUrl: "type.googleapis.com/x.Y", Value: []byte{8, 1}}), "application/protobuf", "\x08\x01"},
		{"no data", protoEvent(ctAttr("application/json"), nil), "application/json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeProto(tt.ev)
			if err != nil {
				t.Fatalf("DecodeProto: %v", err)
			}
			if err := Validate(&ev); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got := string(ev.Data()); got != tt.data {
				t.Errorf("data = %q, want %q", got, tt.data)
			}
			if got := ev.DataContentType(); got != tt.ct {
				t.Errorf("datacontenttype = %q, want %q", got, tt.ct)
			}
		})
	}
}

func TestDecodeProtoAttributes(t *testing.T) {
	when := time.Date(2024, 5, 1, 12, 0, 0, 500, time.UTC)
	attrs := map[string]*pb.CloudEventAttributeValue{
		"subject":      ceString("Euro €"),
		"dataschema":   {Attr: &pb.CloudEventAttributeValue_CeUri{CeUri: "https://example.com/s.json"}},
		"time":         {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(when)}},
		"count":        {Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: -5}},
		"flag":         {Attr: &pb.CloudEventAttributeValue_CeBoolean{CeBoolean: true}},
		"blob":         {Attr: &pb.CloudEventAttributeValue_CeBytes{CeBytes: []byte("hi")}},
		"link":         {Attr: &pb.CloudEventAttributeValue_CeUriRef{CeUriRef: "../up"}},
		"partitionkey": ceString("k1"),
	}
	ev, err := DecodeProto(protoEvent(attrs, []byte("x")))
	if err != nil {
		t.Fatalf("DecodeProto: %v", err)
	}
	if err := Validate(&ev); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := map[string]string{
		"specversion": "1.0", "id": "p-1", "source": "/shop", "type": "order.created",
		"subject": "Euro €", "dataschema": "https://example.com/s.json", "time": "2024-05-01T12:00:00.0000005Z",
		"count": "-5", "flag": "true", "blob": "aGk=", "link": "../up", "partitionkey": "k1",
	}
	if got := attributes(&ev); !maps.Equal(got, want) {
		t.Errorf("attributes = %q, want %q", got, want)
	}

	asStrings := map[string]*pb.CloudEventAttributeValue{
		"dataschema": ceString("https://example.com/s.json"),
		"time":       ceString("2024-05-01T12:00:00Z"),
	}
	ev, err = DecodeProto(protoEvent(asStrings, nil))
	if err != nil {
		t.Fatalf("DecodeProto of canonical strings: %v", err)
	}
	if ev.DataSchema() != "https://example.com/s.json" || !ev.Time().Equal(when.Truncate(time.Second)) {
		t.Errorf("dataschema %q time %v, want them from their strings", ev.DataSchema(), ev.Time())
	}
}

func TestDecodeProtoErrors(t *testing.T) {
	withAttr := func(name string, v *pb.CloudEventAttributeValue) *pb.CloudEvent {
		return protoEvent(map[string]*pb.CloudEventAttributeValue{name: v}, nil)
	}
	uri := func(s string) *pb.CloudEventAttributeValue {
		return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeUri{CeUri: s}}
	}
	integer := &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: 1}}
	noSpec := protoEvent(nil, nil)
	noSpec.SpecVersion = ""
	oldSpec := protoEvent(nil, nil)
	oldSpec.SpecVersion = "0.3"
	badSource := protoEvent(nil, nil)
	badSource.Source = "a b"
	tests := []struct {
		name          string
		ev            *pb.CloudEvent
		field, reason string
	}{
		{"no specversion", noSpec, "specversion", "required"},
		{"old specversion", oldSpec, "specversion", "1.0"},
		{"bad source", badSource, "source", "URI-reference"},
		{"name with a dash", withAttr("Bad-Name", ceString("x")), "Bad-Name", "lower-case"},
		{"upper-case name", withAttr("BadName", ceString("x")), "BadName", "lower-case"},
		{"name too long", withAttr("abcdefghijklmnopqrstu", ceString("x")), "abcdefghijklmnopqrstu", "at most 20"},
		{"empty name", withAttr("", ceString("x")), "", "empty"},
		{"data as a name", withAttr("data", ceString("x")), "data", "reserved"},
		{"id in the map", withAttr("id", ceString("x")), "id", "field of the CloudEvent"},
		{"specversion in the map", withAttr("specversion", ceString("1.0")), "specversion", "field of the CloudEvent"},
		{"no value", withAttr("ext", &pb.CloudEventAttributeValue{}), "ext", "no value"},
		{"nil value", withAttr("ext", nil), "ext", "no value"},
		{"content type not a string", withAttr("datacontenttype", integer), "datacontenttype", "ce_string value, not ce_integer"},
		{"content type not a media type", withAttr("datacontenttype", ceString("json")), "datacontenttype", "media type"},
		{"empty subject", withAttr("subject", ceString("")), "subject", "not be empty"},
		{"dataschema an integer", withAttr("dataschema", integer), "dataschema", "ce_uri value, not ce_integer"},
		{"time an integer", withAttr("time", integer), "time", "ce_timestamp value"},
		{"time not RFC 3339", withAttr("time", ceString("yesterday")), "time", "RFC 3339"},
		{"time out of range", withAttr("time", &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{
			CeTimestamp: &timestamppb.Timestamp{Seconds: 1 << 40}}}), "time", "valid timestamp"},
		{"relative URI", withAttr("ext", uri("/relative")), "ext", "absolute URI"},
		{"bad URI-reference", withAttr("ext", &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeUriRef{CeUriRef: "a b"}}), "ext", "URI-reference"},
		{"empty bytes", withAttr("ext", &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeBytes{}}), "ext", "not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeProto(tt.ev)
			wantFieldError(t, err, -1, tt.field, tt.reason)
		})
	}
}
