package wire

import (
	"bytes"
	"errors"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// attributes returns every attribute of ev in its canonical string form.
func attributes(ev *event.Event) map[string]string {
	m := make(map[string]string)
	EachAttribute(ev, func(name, value string) { m[name] = value })
	return m
}

// checkBinaryRoundTrip checks, for an event that decoded, that when it is
// also valid, writing its attributes as binary-mode headers and decoding
// them gives the same attributes and data.
func checkBinaryRoundTrip(t *testing.T, ev *event.Event) {
	t.Helper()
	if Validate(ev) != nil {
		return
	}
	h := http.Header{}
	EachAttribute(ev, func(name, value string) {
		if name == "datacontenttype" {
			h.Set("Content-Type", value)
			return
		}
		h.Set(HeaderPrefix+name, EncodeHeader(value))
	})
	back, err := DecodeBinary(h, ev.Data())
	if err != nil {
		t.Fatalf("DecodeBinary of re-encoded %v: %v", h, err)
	}
	if err := Validate(&back); err != nil {
		t.Fatalf("Validate of re-decoded event: %v", err)
	}
	if got, want := attributes(&back), attributes(ev); !maps.Equal(got, want) {
		t.Errorf("attributes after round trip = %q, want %q", got, want)
	}
	if !bytes.Equal(back.Data(), ev.Data()) {
		t.Errorf("data after round trip = %q, want %q", back.Data(), ev.Data())
	}
}

// checkDecodeError fails unless err is nil, a *FieldError or ErrTooManyEvents.
func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var fe *FieldError
	if err != nil && !errors.As(err, &fe) && !errors.Is(err, ErrTooManyEvents) {
		t.Fatalf("error %v (%T) is not a *FieldError", err, err)
	}
}

func FuzzDecodeBinary(f *testing.F) {
	f.Add("1.0", "1", "/s", "t", "Euro%20%E2%82%AC%20%F0%9F%98%80", "", "", "", []byte(""))
	f.Add("1.0", "%20id%20", "https://example.com/a?b=c#d", "com.example", "", "2024-05-01t12:00:00.5+02:00",
		"k%221", "application/json; charset=utf-8", []byte(`{"n": 1}`))
	f.Add("1.0", "1", "urn:x:y", "t", "%C3%28", "2024-02-30T00:00:00Z", "a%01b", "text", []byte("\x00\xff"))
	f.Add("0.3", "", "a%20b", "", "%zz", "x", "", "text/plain; charset", []byte("x"))
	f.Add("1.0", "1", "a?b#c#d", "t", "", "0000-01-01T00:00:00+01:00", "", "", []byte(""))
	f.Add("1.0", "1", "http://", "t", "", "9999-12-31T23:59:59.9999999999-01:00", "", "", []byte(""))
	f.Fuzz(func(t *testing.T, specversion, id, source, typ, subject, tm, ext, ct string, body []byte) {
		h := http.Header{}
		for name, v := range map[string]string{
			"ce-specversion": specversion, "ce-id": id, "ce-source": source, "ce-type": typ,
			"ce-subject": subject, "ce-time": tm, "ce-partitionkey": ext, "Content-Type": ct,
		} {
			if v != "" {
				h.Set(name, v)
			}
		}
		ev, err := DecodeBinary(h, body)
		checkDecodeError(t, err)
		if err == nil {
			checkBinaryRoundTrip(t, &ev)
		}
	})
}

func FuzzDecodeStructured(f *testing.F) {
	for _, name := range []string{"spec-text-data.json", "spec-json-data.json", "spec-binary-data.json"} {
		f.Add(readTestdata(f, name))
	}
	for _, body := range []string{
		obj(`"subject":"Euro \u20ac \ud83d\ude00","time":"2024-05-01T12:00:00Z","n":2147483647,"b":true`),
		obj(`"datacontenttype":"application/vnd.foo+json","data": {"a" : [1, 2]}`),
		obj(`"datacontenttype":"text/plain","data":"x\ny"`),
		obj(`"data_base64":"AAEC/w==","dataschema":"https://example.com/s"`),
		obj(`"n":2147483648`),
		obj(`"data":"x","data_base64":"eA=="`),
		obj(`"Foo":"x"`),
		obj(`"foo":"a\u0001"`),
		obj(`"subject":"\ud800"`),
		`{"specversion":"1.0","id":"1","source":"HTTP://A/%7e","type":"t"}`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := DecodeStructured(body)
		checkDecodeError(t, err)
		if err == nil {
			checkBinaryRoundTrip(t, &ev)
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(readTestdata(f, "batch.json"))
	f.Add([]byte("[" + obj(`"subject":"s"`) + "," + obj(`"data":{"a":1}`) + "]"))
	f.Add([]byte("[]"))
	f.Add([]byte("[" + obj("") + ",5]"))
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := DecodeBatch(body, 8)
		checkDecodeError(t, err)
		if err == nil && len(evs) == 0 {
			t.Fatal("DecodeBatch returned no events and no error")
		}
		for i := range evs {
			checkBinaryRoundTrip(t, &evs[i])
		}
	})
}

func FuzzDecodeProto(f *testing.F) {
	ts := &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(time.Date(2024, 5, 1, 12, 0, 0, 5, time.UTC))}}
	for _, ev := range []*pb.CloudEvent{
		protoEvent(ctAttr("application/json"), []byte(`{"n":1}`)),
		protoEvent(ctAttr("application/json"), `{"order":2001}`),
		protoEvent(nil, "hi"),
		protoEvent(map[string]*pb.CloudEventAttributeValue{
			"time": ts, "stamp": ts, "subject": ceString("Euro €"),
			"n": {Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: -1}},
			"b": {Attr: &pb.CloudEventAttributeValue_CeBytes{CeBytes: []byte{0}}},
			"u": {Attr: &pb.CloudEventAttributeValue_CeUri{CeUri: "https://example.com/a"}},
			"r": {Attr: &pb.CloudEventAttributeValue_CeUriRef{CeUriRef: "a?b#c"}},
		}, []byte{0, 0xff}),
		protoEvent(map[string]*pb.CloudEventAttributeValue{"Bad-Name": ceString("x"), "id": {}}, nil),
		protoEvent(nil, &anypb.Any{TypeUrl: "type.googleapis.com/x.Y", Value: []byte{8, 1}}),
	} {
		b, err := proto.Marshal(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var p pb.CloudEvent
		if proto.Unmarshal(raw, &p) != nil {
			return
		}
		ev, err := DecodeProto(&p)
		checkDecodeError(t, err)
		if err == nil {
			checkBinaryRoundTrip(t, &ev)
		}
	})
}
