package wire

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"
)

// member is a member of a JSON object: its name, decoded, and its value,
// undecoded.
type member struct {
	name string
	raw  json.RawMessage
}

// readObject returns the members of the JSON object body sorted by name; a
// name given twice is an error. Valid JSON is split by jsonScan, in one
// pass, and the values share body's memory; anything else is read by
// encoding/json (readObjectJSON), which says what is wrong with it.
func readObject(body []byte) ([]member, *FieldError) {
	if start := firstByte(body); start == len(body) || body[start] != '{' {
		return readObjectJSON(body)
	}
	members := make([]member, 0, 8)
	valid := scanAll(body, func(name, value []byte) {
		members = append(members, member{name: memberName(name), raw: value})
	})
	if !valid {
		return readObjectJSON(body)
	}
	if ferr := checkUnique(members); ferr != nil {
		return nil, ferr
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.name, b.name) })
	return members, nil
}

// firstByte is the index of the first byte of b that is not JSON white
// space, len(b) when there is none.
func firstByte(b []byte) int {
	s := jsonScan{b: b}
	s.space()
	return s.i
}

// memberName decodes the quoted name of a member of valid JSON, as
// encoding/json does.
func memberName(quoted []byte) string {
	inner := quoted[1 : len(quoted)-1]
	if name, ok := commonStrings[string(inner)]; ok {
		return name
	}
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var name string
	_ = json.Unmarshal(quoted, &name) // a valid JSON string always decodes
	return name
}

// commonStrings are the member names and values most events have, so that
// decoding them allocates nothing.
var commonStrings = interned(
	"specversion", "id", "source", "type", "datacontenttype", "dataschema", "subject", "time",
	"data", "data_base64", "traceparent", "tracestate", "partitionkey",
	specVersion, "application/json",
)

// interned maps each of ss to itself.
func interned(ss ...string) map[string]string {
	m := make(map[string]string, len(ss))
	for _, s := range ss {
		m[s] = s
	}
	return m
}

// checkUnique refuses the first member, in the order given, whose name an
// earlier one has.
func checkUnique(members []member) *FieldError {
	const linear = 32 // below this many members, a map costs more than it saves
	var seen map[string]bool
	if len(members) > linear {
		seen = make(map[string]bool, len(members))
	}
	for i, m := range members {
		dup := seen[m.name]
		if seen == nil {
			dup = slices.ContainsFunc(members[:i], func(o member) bool { return o.name == m.name })
		} else {
			seen[m.name] = true
		}
		if dup {
			return fieldErr(m.name, "must not appear more than once")
		}
	}
	return nil
}

// readObjectJSON is readObject with encoding/json's decoder, for what
// jsonScan does not read: JSON that is not valid, or not an object, or
// nested too deeply.
func readObjectJSON(body []byte) ([]member, *FieldError) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, jsonErr(-1, err, "an event must be a JSON object")
	}
	var members []member
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonErr(-1, err, "")
		}
		name, _ := tok.(string)
		if seen[name] {
			return nil, fieldErr(name, "must not appear more than once")
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, jsonErr(-1, err, "")
		}
		members = append(members, member{name: name, raw: raw})
	}
	if ferr := closeJSON(dec, "event"); ferr != nil {
		return nil, ferr
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.name, b.name) })
	return members, nil
}

// memberValue returns the value of the member name and whether there is
// one.
func memberValue(members []member, name string) (json.RawMessage, bool) {
	for _, m := range members {
		if m.name == name {
			return m.raw, true
		}
	}
	return nil, false
}
