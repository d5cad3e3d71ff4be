package wire

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The benchmarks decode and encode the event the separate-process
// benchmark publishes: 256 bytes of JSON data, id, source, type, time and
// datacontenttype.

var benchData = []byte(`{"order_id":"ord-0000000042","pad":"` + strings.Repeat("x", 256-38) + `"}`)

// benchHeader is a binary-mode request's headers as net/http hands them over.
func benchHeader() http.Header {
	return http.Header{
		"Content-Type":   {"application/json"},
		"Content-Length": {"256"},
		"User-Agent":     {"Go-http-client/1.1"},
		"Ce-Specversion": {"1.0"},
		"Ce-Id":          {"evt-000-000000000042"},
		"Ce-Source":      {"/bench/orders"},
		"Ce-Type":        {"com.example.order.created"},
		"Ce-Time":        {"2025-01-02T03:04:05.678901Z"},
	}
}

func benchEvent(b *testing.B) *event.Event {
	b.Helper()
	ev, err := DecodeBinary(benchHeader(), benchData)
	if err != nil {
		b.Fatal(err)
	}
	ev.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	return &ev
}

func BenchmarkDetectMode(b *testing.B) {
	h := benchHeader()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DetectMode(h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBinary(b *testing.B) {
	h := benchHeader()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBinary(h, benchData); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	ev := benchEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEachAttribute(b *testing.B) {
	ev := benchEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		EachAttribute(ev, func(name, value string) { n += len(name) + len(value) })
	}
}

func BenchmarkEncodeNATS(b *testing.B) {
	ev := benchEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		EncodeNATS(ev)
	}
}

func BenchmarkDecodeNATS(b *testing.B) {
	h, data := EncodeNATS(benchEvent(b))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeNATS(h, data); err != nil {
			b.Fatal(err)
		}
	}
}

// benchBatch is a batch of n structured events.
func benchBatch(n int) []byte {
	var body bytes.Buffer
	body.WriteByte('[')
	for i := range n {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"specversion":"1.0","id":"evt-%015d","source":"/bench/orders","type":"com.example.order.created","time":"2025-01-02T03:04:05.678901Z","datacontenttype":"application/json","data":%s}`,
			i, benchData)
	}
	body.WriteByte(']')
	return body.Bytes()
}

func BenchmarkDecodeStructured(b *testing.B) {
	body := benchBatch(1)
	body = body[1 : len(body)-1]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeStructured(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeBatch decodes a batch of 100 events; its time per
// operation is per batch.
func BenchmarkDecodeBatch(b *testing.B) {
	body := benchBatch(100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBatch(body, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeProto(b *testing.B) {
	p := &pb.CloudEvent{
		Id: "evt-000-000000000042", Source: "/bench/orders", SpecVersion: "1.0", Type: "com.example.order.created",
		Attributes: map[string]*pb.CloudEventAttributeValue{
			"time":            {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(time.Date(2025, 1, 2, 3, 4, 5, 678901000, time.UTC))}},
			"datacontenttype": {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "application/json"}},
		},
		Data: &pb.CloudEvent_BinaryData{BinaryData: benchData},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeProto(p); err != nil {
			b.Fatal(err)
		}
	}
}
