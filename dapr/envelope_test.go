package dapr

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventsidecar/eventsidecar/wire"
)

// T is the traceparent in the envelopes Dapr printed (see TestWrap).
const T = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// addedByDelivery are the members of Dapr's envelope that the delivery of
// a Dapr subscription adds: the stored event lacks them.
var addedByDelivery = []string{"topic", "pubsubname", "traceid", "traceparent", "tracestate", "time"}

// TestWrap checks the stored event against the envelopes Dapr 1.18's own
// code printed for the same publishes (app id "orders", topic and pubsub
// "orders" and "pubsub"; design notes §3.1): every attribute and the data
// Dapr's envelope holds are in the event, the id too unless Dapr made one
// up, and nothing else but the time of receipt and the traceparent the
// publish path adds.
func TestWrap(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		md                      Metadata
		dapr                    string // Dapr's envelope
		generatedID             bool
	}{
		{name: "object", contentType: "application/json", body: `{"orderId":1}`, generatedID: true,
			dapr: `{"data":{"orderId":1},"datacontenttype":"application/json","id":"0d60b910-2b1a-4b37-8b7e-6e0c7f8f2a11","pubsubname":"pubsub",
				"source":"orders","specversion":"1.0","time":"2026-12-02T03:54:18Z","topic":"orders","traceid":"` + T + `","traceparent":"` + T + `",
				"tracestate":"","type":"com.dapr.event.sent"}`},
		{name: "string", contentType: "text/plain", body: "hello", generatedID: true,
			dapr: `{"data":"hello","datacontenttype":"text/plain","id":"x","pubsubname":"pubsub","source":"orders","specversion":"1.0",
				"time":"2026-12-02T03:54:18Z","topic":"orders","traceid":"` + T + `","traceparent":"` + T + `","tracestate":"","type":"com.dapr.event.sent"}`},
		{name: "no content type", contentType: "", body: "hello", generatedID: true,
			dapr: `{"data":"hello","datacontenttype":"text/plain","id":"x","pubsubname":"pubsub","source":"orders","specversion":"1.0",
				"time":"2026-12-02T03:54:18Z","topic":"orders","traceid":"` + T + `","traceparent":"` + T + `","tracestate":"","type":"com.dapr.event.sent"}`},
		{name: "bad json", contentType: "application/json", body: "{bad", generatedID: true,
			dapr: `{"data":"{bad","datacontenttype":"application/json","id":"x","pubsubname":"pubsub","source":"orders","specversion":"1.0",
				"time":"2026-12-02T03:54:18Z","topic":"orders","traceid":"` + T + `","traceparent":"` + T + `","tracestate":"","type":"com.dapr.event.sent"}`},
		{name: "vnd+json", contentType: "application/vnd.api+json", body: `{"a":1}`, generatedID: true,
			dapr: `{"data":"{\"a\":1}","datacontenttype":"application/vnd.api+json","id":"x","pubsubname":"pubsub","source":"orders","specversion":"1.0",
				"time":"2026-12-02T03:54:18Z","topic":"orders","traceid":"` + T + `","traceparent":"` + T + `","tracestate":"","type":"com.dapr.event.sent"}`},
		{name: "bytes", contentType: "application/octet-stream", body: "\x01\x02\x03", generatedID: true,
			dapr: `{"data_base64":"AQID","datacontenttype":"application/octet-stream","id":"x","pubsubname":"pubsub","source":"orders","specversion":"1.0",
				"time":"2026-12-02T03:54:18Z","topic":"orders","traceid":"` + T + `","traceparent":"` + T + `","tracestate":"","type":"com.dapr.event.sent"}`},
		{name: "cloudevent, overrides ignored", contentType: "application/cloudevents+json", md: Metadata{"cloudevent.id": "ignored"},
			body: `{"specversion":"1.0","id":"ce-1","source":"/src","type":"t.x","datacontenttype":"application/json","data":{"a":1}}`,
			dapr: `{"data":{"a":1},"datacontenttype":"application/json","id":"ce-1","pubsubname":"pubsub","source":"/src","specversion":"1.0",
				"time":"2026-12-02T03:54:18Z","topic":"orders","traceid":"` + T + `","traceparent":"` + T + `","tracestate":"","type":"t.x"}`},
		{name: "cloudevent without source and type", contentType: "application/cloudevents+json; charset=utf-8",
			body: `{"specversion":"1.0","id":"ce-2","data":1}`,
			dapr: `{"data":1,"id":"ce-2","pubsubname":"pubsub","source":"Dapr","specversion":"1.0","time":"2026-12-02T03:54:18Z","topic":"orders",
				"traceid":"` + T + `","traceparent":"` + T + `","tracestate":"","type":"com.dapr.event.sent"}`},
		{name: "overrides", contentType: "application/json", body: `{"a":1}`,
			md: Metadata{"cloudevent.id": "my-id", "cloudevent.source": "/me", "cloudevent.subject": "s1", "cloudevent.type": "my.type"},
			dapr: `{"data":{"a":1},"datacontenttype":"application/json","id":"my-id","pubsubname":"pubsub","source":"/me","specversion":"1.0",
				"subject":"s1","time":"2026-12-02T03:54:18Z","topic":"orders","traceid":"` + T + `","traceparent":"` + T + `","tracestate":"",
				"type":"my.type"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Wrap("orders", tt.contentType, []byte(tt.body), tt.md)
			if err != nil {
				t.Fatalf("Wrap: %v", err)
			}
			wantStored(t, &ev, tt.dapr, tt.generatedID)
		})
	}
}

// wantStored checks ev against Dapr's envelope dapr, leaving out what
// delivery adds and, when generatedID, the id (which must be there).
func wantStored(t *testing.T, ev *event.Event, dapr string, generatedID bool) {
	t.Helper()
	var env map[string]json.RawMessage
	if err := json.Unmarshal([]byte(dapr), &env); err != nil {
		t.Fatalf("envelope: %v", err)
	}
	for _, name := range addedByDelivery {
		delete(env, name)
	}
	if generatedID {
		delete(env, "id")
		if ev.ID() == "" {
			t.Error("no id")
		}
	}
	wantData(t, ev.Data(), env)
	got := map[string]string{}
	wire.EachAttribute(ev, func(name, value string) { got[name] = value })
	delete(got, "time")
	if generatedID {
		delete(got, "id")
	}
	for name, raw := range env {
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Errorf("envelope member %s = %s, not a string", name, raw)
		}
		if got[name] != v {
			t.Errorf("%s = %q, want %q", name, got[name], v)
		}
		delete(got, name)
	}
	if len(got) > 0 {
		t.Errorf("attributes Dapr's envelope lacks: %v", got)
	}
}

// wantData checks data against the envelope's data or data_base64, and
// removes them from env.
func wantData(t *testing.T, data []byte, env map[string]json.RawMessage) {
	t.Helper()
	defer delete(env, "data")
	defer delete(env, "data_base64")
	if raw, ok := env["data_base64"]; ok {
		var b64 string
		_ = json.Unmarshal(raw, &b64)
		if want, _ := base64.StdEncoding.DecodeString(b64); !bytes.Equal(data, want) {
			t.Errorf("data = %q, want %q", data, want)
		}
		return
	}
	raw := env["data"]
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if string(data) != s {
			t.Errorf("data = %q, want the string %q", data, s)
		}
		return
	}
	var got, want bytes.Buffer
	if err := json.Compact(&got, data); err != nil || json.Compact(&want, raw) != nil || got.String() != want.String() {
		t.Errorf("data = %s, want the JSON %s", data, raw)
	}
}

func TestWrappedEventsAreValid(t *testing.T) {
	for _, ct := range []string{"application/json", "text/plain", "", "application/octet-stream"} {
		ev, err := Wrap("orders", ct, []byte(`{"a":1}`), nil)
		if err != nil {
			t.Fatalf("Wrap(%q): %v", ct, err)
		}
		ev.SetTime(time.Now())
		if err := wire.Validate(&ev); err != nil {
			t.Errorf("Wrap(%q) is not valid: %v", ct, err)
		}
	}
}

func TestWrapTTL(t *testing.T) {
	before := time.Now().UTC().Truncate(time.Second)
	ev, err := Wrap("orders", "application/json", []byte(`{"a":1}`), Metadata{"ttlInSeconds": "60"})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().UTC()
	exp, _ := ev.Extensions()[ExpirationExtension].(string)
	at, err := time.Parse(time.RFC3339, exp)
	if err != nil || at.Before(before.Add(time.Minute)) || at.After(after.Add(time.Minute)) || !bytes.HasSuffix([]byte(exp), []byte("Z")) {
		t.Errorf("expiration = %q, want now + 60s in UTC, RFC 3339", exp)
	}
	ce, err := Wrap("orders", "application/cloudevents+json", []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t"}`), Metadata{"ttl": "1h"})
	if err != nil || ce.Extensions()[ExpirationExtension] == nil {
		t.Errorf("a CloudEvent body's ttl: %v, extensions %v", err, ce.Extensions())
	}
}

func TestWrapTrace(t *testing.T) {
	ev, err := Wrap("orders", "text/plain", []byte("x"), Metadata{"cloudevent.traceid": T, "cloudevent.tracestate": "k=v"})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Extensions()["traceparent"] != T || ev.Extensions()["tracestate"] != "k=v" {
		t.Errorf("extensions = %v, want traceparent and tracestate from the overrides", ev.Extensions())
	}
	body := `{"specversion":"1.0","id":"1","source":"/s","type":"t","topic":"x","pubsubname":"p","traceid":"` + T + `","tracestate":""}`
	ce, err := Wrap("orders", "application/cloudevents+json", []byte(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	if exts := ce.Extensions(); exts["traceparent"] != T || exts["topic"] != nil || exts["pubsubname"] != nil || exts["traceid"] != nil || len(exts) != 1 {
		t.Errorf("extensions of a Dapr envelope published again = %v, want only traceparent (from traceid)", exts)
	}
}

func TestWrapErrors(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		md                      Metadata
		code                    Code
	}{
		{"bad ttl", "text/plain", "x", Metadata{"ttlInSeconds": "soon"}, CodeRequestMetadata},
		{"cloudevent not JSON", "application/cloudevents+json", "{bad", nil, CodeCloudEventCreation},
		{"cloudevent an array", "application/cloudevents+json", "[1]", nil, CodeCloudEventCreation},
		{"cloudevent without specversion", "application/cloudevents+json", `{"id":"1"}`, nil, CodeInvalidEvent},
		{"cloudevent with a bad time", "application/cloudevents+json", `{"specversion":"1.0","id":"1","time":"yesterday"}`, nil, CodeInvalidEvent},
		{"cloudevent with a member twice", "application/cloudevents+json", `{"specversion":"1.0","id":"1","topic":"a","id":"2"}`, nil, CodeInvalidEvent},
		{"bad source override", "text/plain", "x", Metadata{"cloudevent.source": "%zz"}, CodeInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Wrap("orders", tt.contentType, []byte(tt.body), tt.md)
			var e *Error
			if !errors.As(err, &e) || e.Code != tt.code || e.Cause == "" {
				t.Errorf("Wrap error = %v, want code %d with a cause", err, tt.code)
			}
		})
	}
}

func TestCloudEventWithoutIDIsRefused(t *testing.T) {
	ev, err := Wrap("orders", "application/cloudevents+json", []byte(`{"specversion":"1.0","data":1}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	ev.SetTime(time.Now())
	if err := wire.Validate(&ev); err == nil {
		t.Error("a CloudEvent body without id is valid; Dapr accepts it, the sidecar must not")
	}
}

func TestWrapDoesNotShareTheBody(t *testing.T) {
	body := []byte("hello")
	ev, err := Wrap("orders", "text/plain", body, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := Raw("/eventsidecar/orders", "text/plain", body)
	if err != nil {
		t.Fatal(err)
	}
	copy(body, "HELLO")
	if string(ev.Data()) != "hello" || string(raw.Data()) != "hello" {
		t.Errorf("data = %q, %q after the body changed", ev.Data(), raw.Data())
	}
}

func TestRaw(t *testing.T) {
	ev, err := Raw("/eventsidecar/orders", "application/json", []byte(`{"orderId":2}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID() == "" || ev.Source() != "/eventsidecar/orders" || ev.Type() != wire.RawType || ev.DataContentType() != "application/json" || string(ev.Data()) != `{"orderId":2}` {
		t.Errorf("Raw = %s", ev)
	}
	none, err := Raw("/s", "", []byte("x"))
	if err != nil || none.DataContentType() != "" {
		t.Errorf("Raw without a content type = %v, %v", none, err)
	}
	if _, err := Raw("/s", "not a type", []byte("x")); err == nil {
		t.Error("Raw with a bad content type: no error")
	} else if e := (*Error)(nil); !errors.As(err, &e) || e.Code != CodeInvalidEvent {
		t.Errorf("Raw error = %v, want CodeInvalidEvent", err)
	}
}
