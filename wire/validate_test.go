package wire

import (
	"net/url"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// validEvent returns an event that passes Validate, built with the sdk-go
// setters as the caller of Validate would.
func validEvent() event.Event {
	ev := event.New()
	ev.SetID("1")
	ev.SetSource("/orders")
	ev.SetType("order.created")
	return ev
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(ev *event.Event)
	}{
		{"minimal, no time", func(*event.Event) {}},
		{"all attributes", func(ev *event.Event) {
			ev.SetSubject("Euro € 😀")
			ev.SetTime(time.Now())
			ev.SetDataSchema("https://example.com/schema.json")
			_ = ev.SetData("application/json", map[string]int{"n": 1})
			ev.SetExtension("partitionkey", "k")
		}},
		{"extension types", func(ev *event.Event) {
			ev.SetExtension("num", 5)
			ev.SetExtension("flag", true)
			ev.SetExtension("bin", []byte{0})
			ev.SetExtension("when", time.Now())
			ev.SetExtension("ref", types.URIRef{URL: url.URL{Path: "/x"}})
			ev.SetExtension("uri", &url.URL{Scheme: "https", Host: "example.com"})
		}},
		{"name of 20 characters", func(ev *event.Event) { ev.SetExtension("abcdefghijklmnopqrst", "x") }},
		{"source URN", func(ev *event.Event) { ev.SetSource("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66") }},
		{"non-ASCII string", func(ev *event.Event) { ev.SetType("com.example.\u00e9\u00a0") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := validEvent()
			tt.mutate(&ev)
			if err := Validate(&ev); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestValidateErrors(t *testing.T) {
	ctx := func(ev *event.Event) *event.EventContextV1 { return ev.Context.(*event.EventContextV1) }
	str := func(s string) *string { return &s }
	tests := []struct {
		name, field, reasonHas string
		mutate                 func(ev *event.Event)
	}{
		{"no context", "specversion", "required", func(ev *event.Event) { ev.Context = nil }},
		{"specversion 0.3", "specversion", `"1.0"`, func(ev *event.Event) { ev.SetSpecVersion("0.3") }},
		{"missing id", "id", "required", func(ev *event.Event) { ctx(ev).ID = "" }},
		{"missing source", "source", "required", func(ev *event.Event) { ctx(ev).Source = types.URIRef{} }},
		{"missing type", "type", "required", func(ev *event.Event) { ctx(ev).Type = "" }},
		{"control character in id", "id", "U+0000", func(ev *event.Event) { ctx(ev).ID = "a\x00" }},
		{"DEL in type", "type", "U+007F", func(ev *event.Event) { ctx(ev).Type = "a\x7f" }},
		{"C1 control in type", "type", "U+009F", func(ev *event.Event) { ctx(ev).Type = "a\u009f" }},
		{"invalid UTF-8 in id", "id", "UTF-8", func(ev *event.Event) { ctx(ev).ID = "a\xff" }},
		{"source not a URI-reference", "source", "URI-reference", func(ev *event.Event) {
			ctx(ev).Source = types.URIRef{URL: url.URL{Scheme: "x", Opaque: "a b"}}
		}},
		{"relative dataschema", "dataschema", "absolute", func(ev *event.Event) { ev.SetDataSchema("/schema.json") }},
		{"empty dataschema", "dataschema", "empty", func(ev *event.Event) { ctx(ev).DataSchema = &types.URI{} }},
		{"time after year 9999", "time", "9999", func(ev *event.Event) { ev.SetTime(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)) }},
		{"empty subject", "subject", "empty", func(ev *event.Event) { ctx(ev).Subject = str("") }},
		{"control character in subject", "subject", "control", func(ev *event.Event) { ev.SetSubject("a\tb") }},
		{"unparseable datacontenttype", "datacontenttype", "media type", func(ev *event.Event) {
			ev.SetDataContentType("text/plain; charset")
		}},
		{"datacontenttype without subtype", "datacontenttype", "type/subtype", func(ev *event.Event) { ev.SetDataContentType("text") }},
		{"empty datacontenttype", "datacontenttype", "empty", func(ev *event.Event) { ctx(ev).DataContentType = str("") }},
		{"upper-case extension name", "myExt", "lower-case", func(ev *event.Event) { ctx(ev).Extensions = map[string]any{"myExt": "x"} }},
		{"extension name of 21 characters", "abcdefghijklmnopqrstu", "20", func(ev *event.Event) {
			ev.SetExtension("abcdefghijklmnopqrstu", "x")
		}},
		{"extension named data", "data", "reserved", func(ev *event.Event) { ev.SetExtension("data", "x") }},
		{"extension named like an attribute", "id", "context attribute", func(ev *event.Event) {
			ctx(ev).Extensions = map[string]any{"id": "x"}
		}},
		{"empty extension", "foo", "empty", func(ev *event.Event) { ev.SetExtension("foo", "") }},
		{"control character in extension", "foo", "control", func(ev *event.Event) { ev.SetExtension("foo", "a\nb") }},
		{"float extension", "foo", "not a CloudEvents type", func(ev *event.Event) { ctx(ev).Extensions = map[string]any{"foo": 1.5} }},
		{"bad URI extension", "foo", "absolute", func(ev *event.Event) { ev.SetExtension("foo", &url.URL{Path: "/x"}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := validEvent()
			tt.mutate(&ev)
			wantFieldError(t, Validate(&ev), -1, tt.field, tt.reasonHas)
		})
	}
	t.Run("nil event", func(t *testing.T) {
		wantFieldError(t, Validate(nil), -1, "specversion", "required")
	})
}
