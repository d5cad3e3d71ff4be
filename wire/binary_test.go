package wire

import (
	"net/http"
	"net/textproto"
	"reflect"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

func TestDecodeBinary(t *testing.T) {
	h := header(
		"ce-specversion", "1.0",
		"ce-id", "%20id-1%20",
		"ce-source", "https://example.com/orders?x=1",
		"ce-type", "com.example.order.created",
		"ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80",
		"ce-dataschema", "https://example.com/schema.json",
		"ce-time", "2024-05-01t12:00:00.5+02:00",
		"CE-PartitionKey", "k%221",
		"Content-Type", "application/json; charset=utf-8",
	)
	ev, err := DecodeBinary(h, []byte(`{"n": 1}`))
	if err != nil {
		t.Fatalf("DecodeBinary: %v", err)
	}
	if err := Validate(&ev); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	got := map[string]string{
		"specversion":     ev.SpecVersion(),
		"id":              ev.ID(),
		"source":          ev.Source(),
		"type":            ev.Type(),
		"subject":         ev.Subject(),
		"dataschema":      ev.DataSchema(),
		"datacontenttype": ev.DataContentType(),
		"data":            string(ev.Data()),
	}
	want := map[string]string{
		"specversion":     "1.0",
		"id":              " id-1 ",
		"source":          "https://example.com/orders?x=1",
		"type":            "com.example.order.created",
		"subject":         "Euro € 😀",
		"dataschema":      "https://example.com/schema.json",
		"datacontenttype": "application/json; charset=utf-8",
		"data":            `{"n": 1}`,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	if wantTime := time.Date(2024, 5, 1, 10, 0, 0, 5e8, time.UTC); !ev.Time().Equal(wantTime) {
		t.Errorf("time = %v, want %v", ev.Time(), wantTime)
	}
	if ext := ev.Extensions(); len(ext) != 1 || ext["partitionkey"] != `k"1` {
		t.Errorf("extensions = %v, want partitionkey=k\"1", ext)
	}
	if ev.DataBase64 {
		t.Error("DataBase64 = true, want false for binary mode")
	}
}

func TestDecodeBinaryVariants(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		body string
	}{
		{"spec vector subject", header("ce-specversion", "1.0", "ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80"), ""},
		{"non-canonical header names", http.Header{"ce-specversion": {"1.0"}, "ce-id": {"1"}, "CE-SOURCE": {"/s"}, "ce-type": {"t"}}, "x"},
		{"empty body has no data", header("ce-specversion", "1.0", "ce-id", "1", "ce-source", "/s", "ce-type", "t"), ""},
		{"no content type", header("ce-specversion", "1.0", "ce-id", "1", "ce-source", "/s", "ce-type", "t"), "\x00\x01"},
		{"lowercase percent hex", header("ce-specversion", "1.0", "ce-subject", "%e2%82%ac"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeBinary(tt.h, []byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeBinary: %v", err)
			}
			if string(ev.Data()) != tt.body || (tt.body == "" && ev.Data() != nil) {
				t.Errorf("data = %q, want %q", ev.Data(), tt.body)
			}
		})
	}
	t.Run("spec vector value", func(t *testing.T) {
		ev, err := DecodeBinary(header("ce-specversion", "1.0", "ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80"), nil)
		if err != nil || ev.Subject() != "Euro € 😀" {
			t.Errorf("subject = %q, %v; want %q", ev.Subject(), err, "Euro € 😀")
		}
	})
}

func TestDecodeBinaryErrors(t *testing.T) {
	base := func(kv ...string) http.Header {
		return header(append([]string{"ce-specversion", "1.0", "ce-id", "1", "ce-source", "/s", "ce-type", "t"}, kv...)...)
	}
	tests := []struct {
		name, field, reasonHas string
		h                      http.Header
	}{
		{"missing specversion", "ce-specversion", "required", header("ce-id", "1")},
		{"specversion 0.3", "ce-specversion", `"1.0"`, header("ce-specversion", "0.3")},
		{"bad percent-encoding", "ce-subject", "percent", base("ce-subject", "100%")},
		{"invalid UTF-8 after decoding", "ce-subject", "UTF-8", base("ce-subject", "%C3%28")},
		{"raw invalid UTF-8", "ce-foo", "UTF-8", base("ce-foo", "\xff")},
		{"header twice", "ce-id", "once", base("ce-id", "2")},
		{"header in two spellings", "ce-foo", "once", http.Header{"ce-specversion": {"1.0"}, "Ce-Foo": {"a"}, "ce-foo": {"b"}}},
		{"ce-datacontenttype", "ce-datacontenttype", "Content-Type", base("ce-datacontenttype", "text/plain")},
		{"ce-data", "ce-data", "reserved", base("ce-data", "x")},
		{"ce-data_base64", "ce-data_base64", "reserved", base("ce-data_base64", "eA==")},
		{"name of 21 characters", "ce-abcdefghijklmnopqrstu", "20", base("ce-abcdefghijklmnopqrstu", "x")},
		{"name with dash", "ce-foo-bar", "lower-case", base("ce-foo-bar", "x")},
		{"empty name", "ce-", "empty", base("ce-", "x")},
		{"empty subject", "ce-subject", "empty", base("ce-subject", "")},
		{"empty extension", "ce-foo", "empty", base("ce-foo", "")},
		{"empty time", "ce-time", "empty", base("ce-time", "")},
		{"bad time", "ce-time", "RFC 3339", base("ce-time", "2024-05-01 12:00:00Z")},
		{"time with comma", "ce-time", "RFC 3339", base("ce-time", "2024-05-01T12:00:00,5Z")},
		{"time out of range", "ce-time", "RFC 3339", base("ce-time", "2024-02-30T12:00:00Z")},
		{"time before year 0 in UTC", "ce-time", "0000", base("ce-time", "0000-01-01T00:00:00+01:00")},
		{"time after year 9999 in UTC", "ce-time", "9999", base("ce-time", "9999-12-31T23:59:59-01:00")},
		{"source with space", "ce-source", "URI-reference", header("ce-specversion", "1.0", "ce-source", "a%20b")},
		{"dataschema not a URI", "ce-dataschema", "URI", base("ce-dataschema", "http://a/%25zz")},
		{"bad content type", "Content-Type", "media type", base("Content-Type", "text/plain; charset")},
		{"empty content type", "Content-Type", "empty", base("Content-Type", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBinary(tt.h, []byte("x"))
			wantFieldError(t, err, -1, tt.field, tt.reasonHas)
		})
	}
}

// TestDecodeBinaryLeavesToValidate checks that what the model keeps is left
// to Validate rather than refused by the decoder.
func TestDecodeBinaryLeavesToValidate(t *testing.T) {
	tests := []struct {
		name, field, reasonHas string
		h                      http.Header
	}{
		{"missing id", "id", "required", header("ce-specversion", "1.0", "ce-source", "/s", "ce-type", "t")},
		{"empty type", "type", "required", header("ce-specversion", "1.0", "ce-id", "1", "ce-source", "/s", "ce-type", "")},
		{"control character in extension", "foo", "control", header("ce-specversion", "1.0", "ce-id", "1", "ce-source", "/s", "ce-type", "t", "ce-foo", "a%01b")},
		{"relative dataschema", "dataschema", "absolute", header("ce-specversion", "1.0", "ce-id", "1", "ce-source", "/s", "ce-type", "t", "ce-dataschema", "/schema")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeBinary(tt.h, nil)
			if err != nil {
				t.Fatalf("DecodeBinary: %v", err)
			}
			wantFieldError(t, Validate(&ev), -1, tt.field, tt.reasonHas)
		})
	}
}

// binaryEvent is an event with every context attribute but dataschema and
// an extension.
func binaryEvent() *event.Event {
	ev := event.New()
	ev.SetID("evt-1")
	ev.SetSource("/orders")
	ev.SetType("com.example.order.created")
	ev.SetSubject("order-42")
	ev.SetTime(time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC))
	ev.SetDataContentType("application/json")
	ev.SetExtension("partitionkey", "customer-7")
	ev.DataEncoded = []byte(`{"order":42}`)
	return &ev
}

// TestBinaryHeaders checks that the binary headers of an event are those
// http.Header.Set makes of every attribute but datacontenttype as a
// percent-encoded ce- header and of datacontenttype as Content-Type, and
// that EachBinaryHeader gives them with canonical keys.
func TestBinaryHeaders(t *testing.T) {
	tests := []struct {
		name   string
		change func(*event.Event)
	}{
		{"every attribute", func(ev *event.Event) { ev.SetDataSchema("https://example.com/s.json") }},
		{"no optional attribute", func(ev *event.Event) {
			ev.SetSubject("")
			ev.SetDataContentType("")
			ev.SetTime(time.Time{})
			delete(ev.Context.(*event.EventContextV1).Extensions, "partitionkey")
		}},
		{"percent-encoded values", func(ev *event.Event) {
			ev.SetSubject("Euro € 😀")
			ev.SetExtension("note", `50% "off"`)
		}},
		{"extensions of every type", func(ev *event.Event) {
			ev.SetExtension("priority", int32(5))
			ev.SetExtension("urgent", true)
			ev.SetExtension("ref", "https://example.com/x")
			ev.SetExtension("z9", []byte{1, 2})
			ev.SetExtension("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			ev.SetExtension("tracestate", "a=b")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := binaryEvent()
			tt.change(ev)
			want := http.Header{}
			EachAttribute(ev, func(name, value string) {
				if name != "datacontenttype" {
					want.Set(HeaderPrefix+name, EncodeHeader(value))
				}
			})
			if ct := ev.DataContentType(); ct != "" {
				want.Set("Content-Type", ct)
			}
			got := http.Header{}
			SetBinaryHeaders(got, ev)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("headers\n%v, want\n%v", got, want)
			}
			EachBinaryHeader(ev, func(key, _ string) {
				if c := textproto.CanonicalMIMEHeaderKey(key); key != c {
					t.Errorf("key %q, want the canonical %q", key, c)
				}
			})
		})
	}
}

func BenchmarkSetBinaryHeaders(b *testing.B) {
	ev := binaryEvent()
	b.ReportAllocs()
	for b.Loop() {
		SetBinaryHeaders(make(http.Header, 8), ev)
	}
}
