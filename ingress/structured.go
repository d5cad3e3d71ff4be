package ingress

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventsidecar/eventsidecar/headers"
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
	ev, ferr := decodeObject(body)
	if ferr != nil {
		return event.Event{}, ferr
	}
	return ev, nil
}

// DecodeBatch decodes a JSON array of structured events (the body of an
// application/cloudevents-batch+json request), each as DecodeStructured
// does; it does not validate them. A batch of more than maxEvents events
// (maxEvents <= 0: no limit) is an error wrapping ErrTooManyEvents; an
// empty array, or a body that is not one JSON array, is a *FieldError with
// Index -1; an entry's error is a *FieldError whose Index is its position.
// DecodeBatch does not retain body and is safe for concurrent use.
func DecodeBatch(body []byte, maxEvents int) ([]event.Event, error) {
	raws, err := splitArray(body, maxEvents)
	if err != nil {
		return nil, err
	}
	events := make([]event.Event, len(raws))
	for i, raw := range raws {
		ev, ferr := decodeObject(raw)
		if ferr != nil {
			ferr.Index = i
			return nil, ferr
		}
		events[i] = ev
	}
	return events, nil
}

// splitArray returns the elements of the JSON array body, undecoded.
func splitArray(body []byte, maxEvents int) ([]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, jsonErr(-1, err, "the batch must be a JSON array of events")
	}
	var raws []json.RawMessage
	for dec.More() {
		if maxEvents > 0 && len(raws) == maxEvents {
			return nil, fmt.Errorf("ingress: batch holds more than %d events: %w", maxEvents, ErrTooManyEvents)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, jsonErr(len(raws), err, "")
		}
		raws = append(raws, raw)
	}
	if ferr := closeJSON(dec, "batch"); ferr != nil {
		return nil, ferr
	}
	if len(raws) == 0 {
		return nil, fieldErr("", "the batch must hold at least one event")
	}
	return raws, nil
}

// jsonErr reports a JSON syntax error, or else the reason.
func jsonErr(index int, err error, reason string) *FieldError {
	if err != nil && !errors.Is(err, io.EOF) {
		reason = "not valid JSON: " + err.Error()
	} else if reason == "" {
		reason = "not valid JSON: unexpected end"
	}
	return &FieldError{Index: index, Reason: reason}
}

// closeJSON reads the end of the top-level object or array and checks that
// nothing but white space follows it.
func closeJSON(dec *json.Decoder, what string) *FieldError {
	if _, err := dec.Token(); err != nil {
		return jsonErr(-1, err, "")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fieldErr("", "the "+what+" must be a single JSON value with nothing after it")
	}
	return nil
}

// decodeObject decodes one structured event.
func decodeObject(body []byte) (event.Event, *FieldError) {
	members, names, ferr := readObject(body)
	if ferr != nil {
		return event.Event{}, ferr
	}
	if _, ok := members["specversion"]; !ok {
		return event.Event{}, fieldErr("specversion", "is required")
	}
	ec := &event.EventContextV1{}
	for _, name := range names {
		if ferr := setMember(ec, name, members[name]); ferr != nil {
			return event.Event{}, ferr
		}
	}
	ev := newEvent(ec, nil)
	if ferr := setData(&ev, members); ferr != nil {
		return event.Event{}, ferr
	}
	return ev, nil
}

// readObject returns the members of the JSON object body, undecoded, and
// their names sorted; a name given twice is an error.
func readObject(body []byte) (map[string]json.RawMessage, []string, *FieldError) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, jsonErr(-1, err, "an event must be a JSON object")
	}
	members := make(map[string]json.RawMessage)
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, jsonErr(-1, err, "")
		}
		name, _ := tok.(string)
		if _, dup := members[name]; dup {
			return nil, nil, fieldErr(name, "must not appear more than once")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, jsonErr(-1, err, "")
		}
		members[name] = raw
		names = append(names, name)
	}
	if ferr := closeJSON(dec, "event"); ferr != nil {
		return nil, nil, ferr
	}
	sort.Strings(names)
	return members, names, nil
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
	s, r := jsonString(raw)
	if r == "" {
		r = setAttribute(ec, name, s)
	}
	if r != "" {
		return fieldErr(name, r)
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return string(raw) == "null"
}

// jsonScalar decodes a JSON boolean or number extension value; numbers
// must be integers within signed 32 bits.
func jsonScalar(raw json.RawMessage) (any, string) {
	switch raw[0] {
	case 't':
		return true, ""
	case 'f':
		return false, ""
	case '{', '[':
		return nil, "must be a string, an integer or a boolean, not a JSON object or array"
	}
	s := string(raw)
	if strings.ContainsAny(s, ".eE") {
		return nil, "must be an integer: CloudEvents has no floating-point type"
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return nil, "must be an integer within signed 32 bits (-2147483648 to 2147483647)"
	}
	return int32(n), ""
}

// jsonString decodes a JSON string, refusing invalid UTF-8 and unpaired
// surrogate escapes (which encoding/json would silently replace).
func jsonString(raw json.RawMessage) (string, string) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", "must be a JSON string"
	}
	if !utf8.Valid(raw) {
		return "", "must be valid UTF-8"
	}
	if hasLoneSurrogate(raw) {
		return "", "must not contain an unpaired UTF-16 surrogate escape"
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", "must be a JSON string"
	}
	return s, ""
}

// hasLoneSurrogate reports whether the JSON string raw holds a \u escape of
// a UTF-16 surrogate that is not part of a high-low pair.
func hasLoneSurrogate(raw []byte) bool {
	high := false
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) || raw[i+1] != 'u' {
			if high {
				return true
			}
			if raw[i] == '\\' {
				i++
			}
			continue
		}
		if i+6 > len(raw) {
			return true
		}
		n, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
		if err != nil {
			return true
		}
		i += 5
		r := rune(n)
		isLow := r >= 0xdc00 && r <= 0xdfff
		switch {
		case high:
			high = false
			if !isLow {
				return true
			}
		case isLow:
			return true
		default:
			high = utf16.IsSurrogate(r)
		}
	}
	return high
}

// setData stores the data or data_base64 member as the event's data.
func setData(ev *event.Event, members map[string]json.RawMessage) *FieldError {
	data, hasData := members["data"]
	hasData = hasData && !isNull(data)
	b64, hasB64 := members["data_base64"]
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
		if ct == "" || headers.IsJSON(ct) {
			if !utf8.Valid(data) {
				return fieldErr("data", "must be valid UTF-8")
			}
			ev.DataEncoded = data
			return nil
		}
		s, r := jsonString(data)
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
	s, r := jsonString(raw)
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
