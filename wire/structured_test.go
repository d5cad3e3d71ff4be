package wire

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// minimal is the start of a structured event with the required attributes.
const minimal = `"specversion":"1.0","id":"1","source":"/s","type":"t"`

func obj(members string) string {
	if members == "" {
		return "{" + minimal + "}"
	}
	return "{" + minimal + "," + members + "}"
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeStructuredSpecExamples(t *testing.T) {
	tests := []struct {
		file, id, ct, data string
		base64             bool
	}{
		{"spec-text-data.json", "A234-1234-1234", "text/xml", `<much wow="xml"/>`, false},
		{"spec-json-data.json", "C234-1234-1234", "application/json",
			"{\n        \"appinfoA\" : \"abc\",\n        \"appinfoB\" : 123,\n        \"appinfoC\" : true\n    }", false},
		{"spec-binary-data.json", "B234-1234-1234", "application/vnd.apache.thrift.binary",
			"\x80\x01\x00\x01\x00\x00\x00\x03foo\x00\x00\x00\x00\x0b\x00\x01\x00\x00\x00\x03bar\x0b", true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ev, err := DecodeStructured(readTestdata(t, tt.file))
			if err != nil {
				t.Fatalf("DecodeStructured: %v", err)
			}
			if err := Validate(&ev); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if ev.ID() != tt.id || ev.DataContentType() != tt.ct || string(ev.Data()) != tt.data || ev.DataBase64 != tt.base64 {
				t.Errorf("id %q ct %q data %q base64 %v; want %q %q %q %v",
					ev.ID(), ev.DataContentType(), ev.Data(), ev.DataBase64, tt.id, tt.ct, tt.data, tt.base64)
			}
			if !ev.Time().Equal(time.Date(2018, 4, 5, 17, 31, 0, 0, time.UTC)) {
				t.Errorf("time = %v", ev.Time())
			}
			ext := ev.Extensions()
			if ext["comexampleextension1"] != "value" || ext["comexampleothervalue"] != int32(5) {
				t.Errorf("extensions = %#v", ext)
			}
		})
	}
}

func TestDecodeStructured(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, ev event.Event)
	}{
		{"vnd json data kept raw", obj(`"datacontenttype":"application/vnd.foo+json","data": {"a" : [1, 2] , "b":"\u00e9"}`),
			wantData(`{"a" : [1, 2] , "b":"\u00e9"}`)},
		{"absent datacontenttype stays absent", obj(`"data":[1, 2]`), func(t *testing.T, ev event.Event) {
			wantData(`[1, 2]`)(t, ev)
			if ev.Context.AsV1().DataContentType != nil {
				t.Errorf("datacontenttype = %q, want absent", ev.DataContentType())
			}
		}},
		{"json string data kept raw", obj(`"datacontenttype":"application/json","data":"a\"b"`), wantData(`"a\"b"`)},
		{"text data as JSON string", obj(`"datacontenttype":"text/plain","data":"line\nnext \u20ac"`), wantData("line\nnext €")},
		{"empty text data", obj(`"datacontenttype":"text/plain","data":""`), wantData("")},
		{"null data is absent", obj(`"data":null`), wantData("")},
		{"null data with data_base64", obj(`"data":null,"data_base64":"eA=="`), wantData("x")},
		{"int32 bounds", obj(`"max":2147483647,"min":-2147483648,"zero":-0`), func(t *testing.T, ev event.Event) {
			ext := ev.Extensions()
			if ext["max"] != int32(2147483647) || ext["min"] != int32(-2147483648) || ext["zero"] != int32(0) {
				t.Errorf("extensions = %#v", ext)
			}
		}},
		{"boolean extension", obj(`"flag":true,"off":false`), func(t *testing.T, ev event.Event) {
			if ext := ev.Extensions(); ext["flag"] != true || ext["off"] != false {
				t.Errorf("extensions = %#v", ext)
			}
		}},
		{"null optional attributes are absent", obj(`"subject":null,"time":null,"dataschema":null,"datacontenttype":null,"foo":null`),
			func(t *testing.T, ev event.Event) {
				ec := ev.Context.AsV1()
				if ec.Subject != nil || ec.Time != nil || ec.DataSchema != nil || ec.DataContentType != nil || len(ec.Extensions) != 0 {
					t.Errorf("context = %+v, want no optional attributes", ec)
				}
			}},
		{"escaped member name", `{"specversion":"1.0","\u0069d":"x","source":"/s","type":"t"}`, func(t *testing.T, ev event.Event) {
			if ev.ID() != "x" {
				t.Errorf("id = %q, want x", ev.ID())
			}
		}},
		{"white space kept in values", obj(`"subject":" s "`), func(t *testing.T, ev event.Event) {
			if ev.Subject() != " s " {
				t.Errorf("subject = %q, want %q", ev.Subject(), " s ")
			}
		}},
		{"surrogate pair", obj(`"subject":"\ud83d\ude00"`), func(t *testing.T, ev event.Event) {
			if ev.Subject() != "😀" {
				t.Errorf("subject = %q, want 😀", ev.Subject())
			}
		}},
		{"escaped backslash before u", obj(`"subject":"\\ud800"`), func(t *testing.T, ev event.Event) {
			if ev.Subject() != `\ud800` {
				t.Errorf("subject = %q, want %q", ev.Subject(), `\ud800`)
			}
		}},
		{"lower-case t and z in time", obj(`"time":"2024-05-01t12:00:00.123z"`), func(t *testing.T, ev event.Event) {
			if want := time.Date(2024, 5, 1, 12, 0, 0, 123e6, time.UTC); !ev.Time().Equal(want) {
				t.Errorf("time = %v, want %v", ev.Time(), want)
			}
		}},
		{"surrounding white space", " \n" + obj("") + "\n ", wantData("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeStructured([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeStructured: %v", err)
			}
			if err := Validate(&ev); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			tt.check(t, ev)
		})
	}
}

func wantData(want string) func(t *testing.T, ev event.Event) {
	return func(t *testing.T, ev event.Event) {
		t.Helper()
		if string(ev.Data()) != want {
			t.Errorf("data = %q, want %q", ev.Data(), want)
		}
	}
}

func TestDecodeStructuredDataBase64RoundTrip(t *testing.T) {
	data := make([]byte, 256)
	for i := range data {
		data[i] = byte(i)
	}
	body := obj(`"datacontenttype":"application/octet-stream","data_base64":"` + base64.StdEncoding.EncodeToString(data) + `"`)
	ev, err := DecodeStructured([]byte(body))
	if err != nil {
		t.Fatalf("DecodeStructured: %v", err)
	}
	if !bytes.Equal(ev.Data(), data) || !ev.DataBase64 {
		t.Errorf("data = %x (base64 %v), want %x", ev.Data(), ev.DataBase64, data)
	}
	out, err := ev.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	back, err := DecodeStructured(out)
	if err != nil || !bytes.Equal(back.Data(), data) {
		t.Errorf("after MarshalJSON: data = %x, %v; want %x", back.Data(), err, data)
	}
}

func TestDecodeStructuredErrors(t *testing.T) {
	tests := []struct {
		name, body, field, reasonHas string
	}{
		{"not JSON", `{"specversion":`, "", "JSON"},
		{"empty body", ``, "", "JSON object"},
		{"array", `[]`, "", "JSON object"},
		{"string", `"x"`, "", "JSON object"},
		{"trailing garbage", obj("") + "x", "", "nothing after"},
		{"two objects", obj("") + obj(""), "", "nothing after"},
		{"duplicate member", obj(`"id":"2"`), "id", "more than once"},
		{"duplicate member through escape", obj(`"\u0069d":"2"`), "id", "more than once"},
		{"missing specversion", `{"id":"1","source":"/s","type":"t"}`, "specversion", "required"},
		{"specversion 0.3", `{"specversion":"0.3","id":"1","source":"/s","type":"t"}`, "specversion", `"1.0"`},
		{"specversion number", `{"specversion":1.0,"id":"1","source":"/s","type":"t"}`, "specversion", "JSON string"},
		{"specversion null", `{"specversion":null,"id":"1","source":"/s","type":"t"}`, "specversion", "null"},
		{"id null", `{"specversion":"1.0","id":null,"source":"/s","type":"t"}`, "id", "null"},
		{"type number", `{"specversion":"1.0","id":"1","source":"/s","type":5}`, "type", "JSON string"},
		{"subject number", obj(`"subject":5`), "subject", "JSON string"},
		{"upper-case name", obj(`"myExt":"x"`), "myExt", "lower-case"},
		{"name of 21 characters", obj(`"abcdefghijklmnopqrstu":"x"`), "abcdefghijklmnopqrstu", "20"},
		{"name with underscore", obj(`"foo_bar":"x"`), "foo_bar", "lower-case"},
		{"empty name", obj(`"":"x"`), "", "empty"},
		{"data and data_base64", obj(`"data":"x","data_base64":"eA=="`), "data_base64", "together"},
		{"data_base64 not base64", obj(`"data_base64":"e*=="`), "data_base64", "base64"},
		{"data_base64 unpadded", obj(`"data_base64":"eA"`), "data_base64", "base64"},
		{"data_base64 with line break", obj(`"data_base64":"eA==\n"`), "data_base64", "line breaks"},
		{"data_base64 number", obj(`"data_base64":5`), "data_base64", "JSON string"},
		{"text data not a string", obj(`"datacontenttype":"text/plain","data":{"a":1}`), "data", "JSON string"},
		{"int32 overflow", obj(`"n":2147483648`), "n", "32 bits"},
		{"int32 underflow", obj(`"n":-2147483649`), "n", "32 bits"},
		{"fraction", obj(`"n":1.5`), "n", "floating-point"},
		{"exponent", obj(`"n":1e3`), "n", "floating-point"},
		{"object extension", obj(`"n":{"a":1}`), "n", "object or array"},
		{"array extension", obj(`"n":[1]`), "n", "object or array"},
		{"empty subject", obj(`"subject":""`), "subject", "empty"},
		{"empty extension", obj(`"foo":""`), "foo", "empty"},
		{"empty datacontenttype", obj(`"datacontenttype":""`), "datacontenttype", "empty"},
		{"empty dataschema", obj(`"dataschema":""`), "dataschema", "empty"},
		{"bad time", obj(`"time":"yesterday"`), "time", "RFC 3339"},
		{"time without zone", obj(`"time":"2024-05-01T12:00:00"`), "time", "RFC 3339"},
		{"source with space", `{"specversion":"1.0","id":"1","source":"a b","type":"t"}`, "source", "URI-reference"},
		{"source not ASCII", `{"specversion":"1.0","id":"1","source":"/caf\u00e9","type":"t"}`, "source", "URI-reference"},
		{"source bad escape", `{"specversion":"1.0","id":"1","source":"/a%zz","type":"t"}`, "source", "percent"},
		{"dataschema with brace", obj(`"dataschema":"http://a/{x}"`), "dataschema", "URI"},
		{"datacontenttype unparseable", obj(`"datacontenttype":"text/plain; charset"`), "datacontenttype", "media type"},
		{"invalid UTF-8 in string", obj("\"subject\":\"a\xffb\""), "subject", "UTF-8"},
		{"invalid UTF-8 in JSON data", obj("\"data\":\"a\xffb\""), "data", "UTF-8"},
		{"lone high surrogate", obj(`"subject":"a\ud800b"`), "subject", "surrogate"},
		{"lone low surrogate", obj(`"subject":"\udc00"`), "subject", "surrogate"},
		{"high surrogate at end", obj(`"subject":"a\ud800"`), "subject", "surrogate"},
		{"two high surrogates", obj(`"subject":"\ud800\ud800"`), "subject", "surrogate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeStructured([]byte(tt.body))
			wantFieldError(t, err, -1, tt.field, tt.reasonHas)
		})
	}
}

// TestDecodeStructuredLeavesToValidate checks that what the model keeps is
// left to Validate rather than refused by the decoder.
func TestDecodeStructuredLeavesToValidate(t *testing.T) {
	tests := []struct {
		name, body, field, reasonHas string
	}{
		{"missing id", `{"specversion":"1.0","source":"/s","type":"t"}`, "id", "required"},
		{"empty source", `{"specversion":"1.0","id":"1","source":"","type":"t"}`, "source", "required"},
		{"missing type", `{"specversion":"1.0","id":"1","source":"/s"}`, "type", "required"},
		{"control character in extension", obj(`"foo":"a\u0007b"`), "foo", "control"},
		{"C1 control character in subject", obj(`"subject":"a\u0085b"`), "subject", "control"},
		{"relative dataschema", obj(`"dataschema":"/schema.json"`), "dataschema", "absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeStructured([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeStructured: %v", err)
			}
			wantFieldError(t, Validate(&ev), -1, tt.field, tt.reasonHas)
		})
	}
}

func TestDataMember(t *testing.T) {
	tests := []struct {
		contentType, data, wantName, wantValue string
	}{
		{"application/cloudevents+json", `{"a":1}`, "data", `{"a":1}`},
		{"text/json", `"s"`, "data", `"s"`},
		{"Application/Problem+JSON;charset=utf-8", `{}`, "data", `{}`},
		{"text/csv", "a,b\n", "data", `"a,b\n"`},
		{"image/svg+xml", "<svg/>", "data", `"<svg/>"`},
		{"application/jsonx", `{}`, "data_base64", `"e30="`},
		{"application/+json", `{}`, "data_base64", `"e30="`},
		{"application/pdf", "%PDF", "data_base64", `"` + base64.StdEncoding.EncodeToString([]byte("%PDF")) + `"`},
		{"text/plain", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.contentType+" "+tt.data, func(t *testing.T) {
			ev := validEvent()
			ev.SetDataContentType(tt.contentType)
			ev.DataEncoded = []byte(tt.data)
			name, value := dataMember(&ev)
			if name != tt.wantName || string(value) != tt.wantValue {
				t.Errorf("dataMember = %s: %s, want %s: %s", name, value, tt.wantName, tt.wantValue)
			}
		})
	}
}

func TestEncodeStructuredDecodesBack(t *testing.T) {
	binary := validEvent()
	binary.SetDataContentType("application/octet-stream")
	binary.DataEncoded = []byte{0, 1, 0xff}
	text := validEvent()
	text.SetDataContentType("text/plain; charset=utf-8")
	text.DataEncoded = []byte("Euro € 😀 <&>")
	typed := validEvent()
	typed.SetExtension("urgent", true)
	typed.SetExtension("count", "12")
	tests := []struct {
		name string
		ev   *event.Event
	}{
		{"every kind of attribute, JSON data", richEvent(t)},
		{"binary data", &binary},
		{"text data", &text},
		{"typed extensions, no data", &typed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeStructured(EncodeStructured(tt.ev))
			if err != nil {
				t.Fatalf("DecodeStructured(EncodeStructured): %v", err)
			}
			wantSameEvent(t, &got, tt.ev)
			if want, ok := tt.ev.Extensions()["urgent"]; ok && got.Extensions()["urgent"] != want {
				t.Errorf("urgent = %#v, want the Boolean %v", got.Extensions()["urgent"], want)
			}
		})
	}
}
