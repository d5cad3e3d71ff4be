package dapr

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFromQuery(t *testing.T) {
	q, err := url.ParseQuery("metadata.rawPayload=true&metadata.cloudevent.id=a&metadata.cloudevent.id=b&other=x&metadata.=e")
	if err != nil {
		t.Fatal(err)
	}
	want := Metadata{"rawPayload": "true", "cloudevent.id": "a", "": "e"}
	if got := FromQuery(q); !reflect.DeepEqual(got, want) {
		t.Errorf("FromQuery = %v, want %v", got, want)
	}
}

func TestRawPayload(t *testing.T) {
	tests := []struct {
		md      Metadata
		want    bool
		wantErr string
	}{
		{md: nil},
		{md: Metadata{"rawPayload": ""}},
		{md: Metadata{"rawPayload": "true"}, want: true},
		{md: Metadata{"rawPayload": "1"}, want: true},
		{md: Metadata{"rawPayload": "False"}},
		{md: Metadata{"rawPayload": `"true"`}, want: true},
		{md: Metadata{"rawpayload": "true"}},
		{md: Metadata{"rawPayload": "yes"}, wantErr: "rawPayload value must be a valid boolean: actual is 'yes'"},
	}
	for _, tt := range tests {
		got, err := tt.md.RawPayload()
		if got != tt.want || !errorIs(err, tt.wantErr) {
			t.Errorf("%v.RawPayload() = %v, %v; want %v, %q", tt.md, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestTTL(t *testing.T) {
	tests := []struct {
		md      Metadata
		want    time.Duration
		ok      bool
		wantErr string
	}{
		{md: nil},
		{md: Metadata{"ttlInSeconds": "60"}, want: time.Minute, ok: true},
		{md: Metadata{"TTLINSECONDS": "2"}, want: 2 * time.Second, ok: true},
		{md: Metadata{"ttl": "1m30s"}, want: 90 * time.Second, ok: true},
		{md: Metadata{"ttl": "-1s"}, want: 0, ok: true},
		{md: Metadata{"ttlInSeconds": `"5"`}, want: 5 * time.Second, ok: true},
		{md: Metadata{"ttlInSeconds": "99999999999999999"}, want: maxTTL, ok: true},
		{md: Metadata{"ttlInSeconds": "0"}, want: 0, ok: true},
		{md: Metadata{"ttlInSeconds": "-3"}, wantErr: "ttl value must be higher than zero: actual is '-3'"},
		{md: Metadata{"ttlInSeconds": "soon"}, wantErr: "ttl value must be a valid integer: actual is 'soon'"},
	}
	for _, tt := range tests {
		got, ok, err := tt.md.TTL()
		if got != tt.want || ok != tt.ok || !errorIs(err, tt.wantErr) {
			t.Errorf("%v.TTL() = %s, %v, %v; want %s, %v, %q", tt.md, got, ok, err, tt.want, tt.ok, tt.wantErr)
		}
	}
}

func TestOverrides(t *testing.T) {
	tests := []struct {
		name string
		md   Metadata
		want Overrides
	}{
		{"none", Metadata{"rawPayload": "false"}, Overrides{}},
		{"all, any case", Metadata{"cloudevent.id": "i", "CloudEvent.Source": "/s", "cloudevent.TYPE": "t", "cloudevent.subject": "sub",
			"cloudevent.traceparent": "00-p", "cloudevent.tracestate": "k=v", "cloudevent.traceid": "00-i"},
			Overrides{ID: "i", Source: "/s", Type: "t", Subject: "sub", TraceParent: "00-p", TraceState: "k=v"}},
		{"traceid without traceparent", Metadata{"cloudevent.traceid": "00-i"}, Overrides{TraceParent: "00-i"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.md.Overrides(); got != tt.want {
				t.Errorf("Overrides = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	request := Metadata{"a": "request", "b": "request"}
	if got := Metadata(nil).Merge(request); got != nil {
		t.Errorf("an entry without metadata got %v, want none", got)
	}
	got := Metadata{"b": "entry"}.Merge(request)
	if want := (Metadata{"a": "request", "b": "entry"}); !reflect.DeepEqual(got, want) {
		t.Errorf("Merge = %v, want %v", got, want)
	}
	if got := (Metadata{}).Merge(nil); got == nil || len(got) != 0 {
		t.Errorf("empty Merge nil = %v, want empty", got)
	}
	if request["b"] != "request" {
		t.Error("Merge changed the request's metadata")
	}
}

func TestUnquote(t *testing.T) {
	for in, want := range map[string]string{`"true"`: "true", `"a\"b"`: `a"b`, "true": "true", `"`: `"`, `"x`: `"x`, `"bad\q"`: `"bad\q"`, `""`: ""} {
		if got := Unquote(in); got != want {
			t.Errorf("Unquote(%s) = %s, want %s", in, got, want)
		}
	}
}

// errorIs reports whether err is nil when want is "", else contains want.
func errorIs(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && strings.Contains(err.Error(), want)
}
