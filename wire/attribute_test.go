package wire

import (
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

func TestStoreAttribute(t *testing.T) {
	tests := []struct {
		name, attr, value string
		check             func(ec *event.EventContextV1) bool
	}{
		{"specversion", "specversion", "1.0", func(ec *event.EventContextV1) bool { return ec.GetSpecVersion() == "1.0" }},
		{"id kept as sent", "id", " a b ", func(ec *event.EventContextV1) bool { return ec.ID == " a b " }},
		{"type kept as sent", "type", "t\u00a0", func(ec *event.EventContextV1) bool { return ec.Type == "t\u00a0" }},
		{"source", "source", "/shop/a b", func(ec *event.EventContextV1) bool { return ec.Source.String() == "/shop/a%20b" }},
		{"subject kept as sent", "subject", " s ", func(ec *event.EventContextV1) bool { return ec.Subject != nil && *ec.Subject == " s " }},
		{"datacontenttype", "datacontenttype", "text/plain; charset=utf-8", func(ec *event.EventContextV1) bool {
			return ec.DataContentType != nil && *ec.DataContentType == "text/plain; charset=utf-8"
		}},
		{"dataschema", "dataschema", "https://example.com/s.json", func(ec *event.EventContextV1) bool {
			return ec.DataSchema != nil && ec.DataSchema.String() == "https://example.com/s.json"
		}},
		{"time", "time", "2024-05-06T07:08:09.5+02:00", func(ec *event.EventContextV1) bool {
			return ec.Time != nil && ec.Time.Equal(time.Date(2024, 5, 6, 5, 8, 9, 5e8, time.UTC))
		}},
		{"time in lower case", "time", "2024-05-06t07:08:09z", func(ec *event.EventContextV1) bool {
			return ec.Time != nil && ec.Time.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC))
		}},
		{"empty subject absent", "subject", "", func(ec *event.EventContextV1) bool { return ec.Subject == nil }},
		{"empty time absent", "time", "", func(ec *event.EventContextV1) bool { return ec.Time == nil }},
		{"extension kept as sent", "greeting", " hi ", func(ec *event.EventContextV1) bool { return ec.Extensions["greeting"] == " hi " }},
		{"empty extension kept", "dlqbody", "", func(ec *event.EventContextV1) bool {
			v, ok := ec.Extensions["dlqbody"]
			return ok && v == ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ec := &event.EventContextV1{}
			if err := storeAttribute(ec, tt.attr, tt.value); err != nil {
				t.Fatalf("storeAttribute(%q, %q) = %v", tt.attr, tt.value, err)
			}
			if !tt.check(ec) {
				t.Errorf("storeAttribute(%q, %q) gave %+v", tt.attr, tt.value, ec)
			}
		})
	}
}

func TestStoreAttributeRefuses(t *testing.T) {
	tests := []struct{ name, attr, value string }{
		{"other specversion", "specversion", "0.3"},
		{"source not a URI reference", "source", "%zz"},
		{"dataschema not a URI reference", "dataschema", "http://[::1"},
		{"time not RFC 3339", "time", "yesterday"},
		{"time without zone", "time", "2024-05-06T07:08:09"},
		{"extension name not alphanumeric", "bad_name", "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := storeAttribute(&event.EventContextV1{}, tt.attr, tt.value); err == nil {
				t.Errorf("storeAttribute(%q, %q) = nil, want an error", tt.attr, tt.value)
			}
		})
	}
}
