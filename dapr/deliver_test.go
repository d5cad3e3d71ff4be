package dapr

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// daprTime is the time in the envelopes Dapr printed.
var daprTime = time.Date(2026, 12, 2, 3, 54, 18, 0, time.UTC)

// TestEnvelopeIsDaprs wraps the publishes Dapr 1.18's own code printed
// envelopes for (design notes §3.1) and checks that the delivery
// envelope is Dapr's, member for member, given Dapr's id and time.
func TestEnvelopeIsDaprs(t *testing.T) {
	tail := `"pubsubname":"pubsub","specversion":"1.0","time":"2026-12-02T03:54:18Z","topic":"orders","traceid":"` + T +
		`","traceparent":"` + T + `","tracestate":""`
	tests := []struct {
		name, contentType, body, dapr string
	}{
		{"object", "application/json", `{"orderId":1}`,
			`{"data":{"orderId":1},"datacontenttype":"application/json","id":"x","source":"orders","type":"com.dapr.event.sent",` + tail + `}`},
		{"string", "text/plain", "hello",
			`{"data":"hello","datacontenttype":"text/plain","id":"x","source":"orders","type":"com.dapr.event.sent",` + tail + `}`},
		{"no content type", "", "hello",
			`{"data":"hello","datacontenttype":"text/plain","id":"x","source":"orders","type":"com.dapr.event.sent",` + tail + `}`},
		{"bad json", "application/json", "{bad",
			`{"data":"{bad","datacontenttype":"application/json","id":"x","source":"orders","type":"com.dapr.event.sent",` + tail + `}`},
		{"vnd+json", "application/vnd.api+json", `{"a":1}`,
			`{"data":"{\"a\":1}","datacontenttype":"application/vnd.api+json","id":"x","source":"orders","type":"com.dapr.event.sent",` + tail + `}`},
		{"xml", "application/xml", `<a/>`,
			`{"data":"<a/>","datacontenttype":"application/xml","id":"x","source":"orders","type":"com.dapr.event.sent",` + tail + `}`},
		{"bytes", "application/octet-stream", "\x01\x02\x03",
			`{"data_base64":"AQID","datacontenttype":"application/octet-stream","id":"x","source":"orders","type":"com.dapr.event.sent",` + tail + `}`},
		{"cloudevent", "application/cloudevents+json",
			`{"specversion":"1.0","id":"x","source":"/src","type":"t.x","datacontenttype":"application/json","data":{"a":1}}`,
			`{"data":{"a":1},"datacontenttype":"application/json","id":"x","source":"/src","type":"t.x",` + tail + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Wrap("orders", tt.contentType, []byte(tt.body), nil)
			if err != nil {
				t.Fatalf("Wrap: %v", err)
			}
			ev.SetID("x")
			ev.SetTime(daprTime)
			got := Envelope(&ev, Fields{PubSub: "pubsub", Topic: "orders", TraceParent: T})
			assertSameJSON(t, got, tt.dapr)
		})
	}
}

func TestEnvelopeKeepsTheEventsTraceAndDropsClashingExtensions(t *testing.T) {
	ev := event.New()
	ev.SetID("1")
	ev.SetSource("/s")
	ev.SetType("t")
	ev.SetExtension("traceparent", "00-11111111111111111111111111111111-2222222222222222-01")
	ev.SetExtension("tracestate", "k=v")
	ev.SetExtension("topic", "mine")
	ev.SetExtension("pubsubname", "mine")
	ev.SetExtension("partitionkey", "p1")
	got := Envelope(&ev, Fields{PubSub: "pubsub", Topic: "orders", TraceParent: T, TraceState: "a=b"})
	assertSameJSON(t, got, `{"specversion":"1.0","id":"1","source":"/s","type":"t","partitionkey":"p1","topic":"orders","pubsubname":"pubsub",
		"traceparent":"00-11111111111111111111111111111111-2222222222222222-01","traceid":"00-11111111111111111111111111111111-2222222222222222-01","tracestate":"k=v"}`)
	if _, ok := ev.Extensions()["topic"]; !ok {
		t.Error("Envelope changed the event")
	}
}

func TestEnvelopeData(t *testing.T) {
	tests := []struct {
		name, contentType, data, member, value string
	}{
		{"JSON without a content type", "", `[1,2]`, "data", `[1,2]`},
		{"JSON with parameters", "application/json; charset=utf-8", `{"a":1}`, "data", `{"a":1}`},
		{"cloudevents JSON type", "application/cloudevents+json", `{"a":1}`, "data", `"{\"a\":1}"`},
		{"binary without a content type", "", "\xff\x00", "data_base64", `"/wA="`},
		{"image", "image/png", "\x89PNG\xff", "data_base64", `"iVBOR/8="`},
		{"text of another type", "application/x-www-form-urlencoded", "a=1", "data", `"a=1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := event.New()
			ev.SetID("1")
			ev.SetSource("/s")
			ev.SetType("t")
			ev.DataEncoded = []byte(tt.data)
			if tt.contentType != "" {
				ev.SetDataContentType(tt.contentType)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(Envelope(&ev, Fields{}), &m); err != nil {
				t.Fatal(err)
			}
			if got := string(m[tt.member]); got != tt.value {
				t.Errorf("%s = %s, want %s (envelope %v)", tt.member, got, tt.value, m)
			}
		})
	}
}

func TestRawEnvelope(t *testing.T) {
	ev, err := Raw("/eventsidecar/orders", "application/json", []byte(`{"amount":5}`))
	if err != nil {
		t.Fatal(err)
	}
	got := RawEnvelope(&ev, Fields{PubSub: "pubsub", Topic: "payments", TraceParent: T})
	assertSameJSON(t, got, `{"data_base64":"eyJhbW91bnQiOjV9","datacontenttype":"application/octet-stream","id":"`+ev.ID()+
		`","pubsubname":"pubsub","source":"/eventsidecar/orders","specversion":"1.0","topic":"payments","traceid":"`+T+
		`","traceparent":"`+T+`","type":"eventsidecar.raw"}`)
}

// assertSameJSON fails unless got and want are the same JSON object
// (member order aside) and got has no member twice.
func assertSameJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w map[string]any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("envelope %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("envelope\n%s\nwant\n%s", got, want)
	}
	dec := json.NewDecoder(bytes.NewReader(got))
	seen := map[string]bool{}
	_, _ = dec.Token()
	for dec.More() {
		tok, _ := dec.Token()
		name, _ := tok.(string)
		if seen[name] {
			t.Errorf("member %q twice in %s", name, got)
		}
		seen[name] = true
		var skip json.RawMessage
		_ = dec.Decode(&skip)
	}
}
