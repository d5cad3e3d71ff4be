package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
)

// requiredAttributes may not be JSON null.
var requiredAttributes = map[string]bool{"specversion": true, "id": true, "source": true, "type": true}

// DecodeStructured decodes one event in the CloudEvents JSON format (the
// body of an application/cloudevents+json request). It refuses what the
// event model would lose or cannot hold: a body that is not exactly one
// JSON object, a member given twice, a bad member name, a missing or wrong
// specversion, null for a required attribute, an empty optional attribute,
// a context attribute that is not a JSON string, an extension that is not a
// string, a signed 32-bit integer or a boolean, both data and data_base64,
// bad base64, a bad time, source or dataschema. JSON null for an optional
// attribute, an extension or the data means absent. Missing id, source and
// type and the remaining rules are left to Validate. When datacontenttype
// is absent or JSON (*/json, */*+json), data is kept byte for byte as sent;
// otherwise it must be a JSON string whose value becomes the data.
// data_base64 is decoded and sets the event's DataBase64. Errors are
// *FieldError with Index -1. DecodeStructured does not retain body and is
// safe for concurrent use.
func DecodeStructured(body []byte) (event.Event, error) {
	ev, ferr := decodeObject(bytes.Clone(body))
	if ferr != nil {
		return event.Event{}, ferr
	}
	return ev, nil
}

// decodeObject decodes one structured event. The event's data may share
// body's memory.
func decodeObject(body []byte) (event.Event, *FieldError) {
	members, ferr := readObject(body)
	if ferr != nil {
		return event.Event{}, ferr
	}
	if _, ok := memberValue(members, "specversion"); !ok {
		return event.Event{}, fieldErr("specversion", "is required")
	}
	ec := &event.EventContextV1{}
	for _, m := range members {
		if ferr := setMember(ec, m.name, m.raw); ferr != nil {
			return event.Event{}, ferr
		}
	}
	ev := newEvent(ec, nil)
	if ferr := setData(&ev, members); ferr != nil {
		return event.Event{}, ferr
	}
	return ev, nil
}

// setMember stores the member name (not data or data_base64) in ec.
func setMember(ec *event.EventContextV1, name string, raw json.RawMessage) *FieldError {
	if name == "data" || name == "data_base64" {
		return nil
	}
	if r := nameReason(name); r != "" {
		return fieldErr(name, r)
	}
	if isNull(raw) {
		if requiredAttributes[name] {
			return fieldErr(name, "must not be null")
		}
		return nil
	}
	if raw[0] != '"' {
		if contextAttributes[name] {
			return fieldErr(name, "must be a JSON string")
		}
		v, r := jsonScalar(raw)
		if r != "" {
			return fieldErr(name, r)
		}
		setExtension(ec, name, v)
		return nil
	}
	s, r := decodeJSONString(raw)
	if r == "" {
		r = setAttribute(ec, name, s)
	}
	if r != "" {
		return fieldErr(name, r)
	}
	return nil
}

// setData stores the data or data_base64 member as the event's data; data
// of a JSON type shares the member's memory.
func setData(ev *event.Event, members []member) *FieldError {
	data, hasData := memberValue(members, "data")
	hasData = hasData && !isNull(data)
	b64, hasB64 := memberValue(members, "data_base64")
	hasB64 = hasB64 && !isNull(b64)
	switch {
	case hasData && hasB64:
		return fieldErr("data_base64", "must not be given together with data")
	case hasB64:
		b, r := decodeBase64(b64)
		if r != "" {
			return fieldErr("data_base64", r)
		}
		ev.DataEncoded, ev.DataBase64 = b, true
	case hasData:
		ct := ev.DataContentType()
		if ct == "" || IsJSON(ct) {
			if !utf8.Valid(data) {
				return fieldErr("data", "must be valid UTF-8")
			}
			ev.DataEncoded = data
			return nil
		}
		s, r := decodeJSONString(data)
		if r != "" {
			return fieldErr("data", r+" when datacontenttype is not JSON")
		}
		ev.DataEncoded = []byte(s)
	}
	return nil
}

// decodeBase64 decodes a JSON string of standard, padded base64. Go's
// decoder skips CR and LF; the spec's base64 has no line breaks, so they
// are refused.
func decodeBase64(raw json.RawMessage) ([]byte, string) {
	s, r := decodeJSONString(raw)
	if r != "" {
		return nil, r
	}
	if strings.ContainsAny(s, "\r\n") {
		return nil, "must be base64 without line breaks"
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, "must be base64 (RFC 4648, standard alphabet, padded)"
	}
	return b, ""
}

// EncodeStructured writes ev in the CloudEvents JSON format: attributes in
// their canonical string form, except Integer and Boolean extensions held
// typed, which stay JSON numbers and booleans; data as dataMember says.
// sdk-go's MarshalJSON is not used: it writes data of a "+json" type as a
// string or base64, not as JSON. EncodeStructured only reads ev.
func EncodeStructured(ev *event.Event) []byte {
	exts := ev.Extensions()
	var b bytes.Buffer
	b.WriteByte('{')
	member := func(name string, value []byte) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.Write(encodeJSONString(name))
		b.WriteByte(':')
		b.Write(value)
	}
	EachAttribute(ev, func(name, value string) {
		member(name, attributeJSON(exts[name], value))
	})
	if name, value := dataMember(ev); name != "" {
		member(name, value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// attributeJSON is the JSON value of an attribute: ext is the extension's
// typed value (nil for a context attribute), canonical its string form.
func attributeJSON(ext any, canonical string) []byte {
	switch v := ext.(type) {
	case int32:
		return strconv.AppendInt(nil, int64(v), 10)
	case bool:
		return strconv.AppendBool(nil, v)
	}
	return encodeJSONString(canonical)
}

// dataMember returns the member carrying ev's data: "data" with the data
// itself when it is valid JSON and datacontenttype is JSON or absent;
// "data" with a JSON string when datacontenttype is text (text/*,
// application/xml, */*+xml) and the data valid UTF-8; "data_base64"
// otherwise. No data, or empty data, gives no member.
func dataMember(ev *event.Event) (string, []byte) {
	data := ev.Data()
	if len(data) == 0 {
		return "", nil
	}
	ct := ev.DataContentType()
	switch {
	case (ct == "" || IsJSON(ct)) && json.Valid(data):
		return "data", data
	case IsText(ct) && utf8.Valid(data):
		return "data", encodeJSONString(string(data))
	}
	return "data_base64", encodeJSONString(base64.StdEncoding.EncodeToString(data))
}
