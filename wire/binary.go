package wire

import (
	"net/http"
	"net/textproto"
	"slices"
	"sort"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
)

// DecodeBinary decodes a binary-mode event: every header whose name starts
// with "ce-" (any case) is an attribute named by the rest of the header name
// lower-cased, its value percent-decoded as the HTTP binding prescribes;
// datacontenttype is the Content-Type header and body is the data (no data
// when empty). Extensions are strings. It refuses a header given more than
// once, a bad name or encoding, an empty optional attribute, a
// ce-datacontenttype header and anything else the event model would lose;
// the remaining rules are Validate's. Errors are *FieldError naming the
// header. The event's data shares body's memory; the caller must not modify
// body afterwards. DecodeBinary only reads h and is safe for concurrent use.
func DecodeBinary(h http.Header, body []byte) (event.Event, error) {
	var room [16]attributeHeader
	attrs, ferr := attributeHeaders(h, room[:0])
	if ferr != nil {
		return event.Event{}, ferr
	}
	if !slices.ContainsFunc(attrs, func(a attributeHeader) bool { return a.name == "specversion" }) {
		return event.Event{}, fieldErr("ce-specversion", "is required")
	}
	ec := &event.EventContextV1{}
	for _, a := range attrs {
		if a.name == "datacontenttype" {
			return event.Event{}, fieldErr(HeaderPrefix+a.name, "is not allowed in binary mode; send the Content-Type header")
		}
		if r := setAttribute(ec, a.name, a.value); r != "" {
			return event.Event{}, fieldErr(HeaderPrefix+a.name, r)
		}
	}
	if ec.DataContentType, ferr = contentType(h); ferr != nil {
		return event.Event{}, ferr
	}
	return newEvent(ec, body), nil
}

// attributeHeader is a ce- header: the attribute's name and its value,
// percent-decoded.
type attributeHeader struct {
	name, value string
}

// attributeHeaders appends the ce- headers of h to attrs, sorted by name.
// The headers are checked in the order of their keys, sorted, and the
// first that is wrong is the error.
func attributeHeaders(h http.Header, attrs []attributeHeader) ([]attributeHeader, *FieldError) {
	var room [16]string
	keys := room[:0]
	for k := range h {
		if len(k) >= len(HeaderPrefix) && strings.EqualFold(k[:len(HeaderPrefix)], HeaderPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		name := attributeName(k[len(HeaderPrefix):])
		if r := nameReason(name); r != "" {
			return nil, fieldErr(HeaderPrefix+name, r)
		}
		if len(h[k]) != 1 || slices.ContainsFunc(attrs, func(a attributeHeader) bool { return a.name == name }) {
			return nil, fieldErr(HeaderPrefix+name, "must be given once")
		}
		v, ferr := decodeAttributeHeader(name, h[k][0])
		if ferr != nil {
			return nil, ferr
		}
		attrs = append(attrs, attributeHeader{name: name, value: v})
	}
	slices.SortFunc(attrs, func(a, b attributeHeader) int { return strings.Compare(a.name, b.name) })
	return attrs, nil
}

// canonicalNames are the attribute names whose ce- header net/http's
// canonical form capitalises, by that form without the prefix.
var canonicalNames = map[string]string{
	"Specversion": "specversion", "Id": "id", "Source": "source", "Type": "type",
	"Subject": "subject", "Time": "time", "Dataschema": "dataschema", "Datacontenttype": "datacontenttype",
	"Traceparent": "traceparent", "Tracestate": "tracestate", "Partitionkey": "partitionkey",
}

// attributeName is the attribute named by the rest of a ce- header's
// name, lower-cased.
func attributeName(rest string) string {
	if name, ok := canonicalNames[rest]; ok {
		return name
	}
	return strings.ToLower(rest)
}

// headerValues returns every value of the header name, matching the names
// in h case-insensitively (h may hold names that are not canonical). The
// caller must not modify them.
func headerValues(h http.Header, name string) []string {
	var found string
	n := 0
	for k := range h {
		if strings.EqualFold(k, name) {
			found = k
			n++
		}
	}
	switch n {
	case 0:
		return nil
	case 1:
		return h[found]
	}
	var keys []string
	for k := range h {
		if strings.EqualFold(k, name) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var vs []string
	for _, k := range keys {
		vs = append(vs, h[k]...)
	}
	return vs
}

// singleHeader returns the value of the header name and whether it is
// present; a header given more than once is an error.
func singleHeader(h http.Header, name string) (string, bool, *FieldError) {
	switch vs := headerValues(h, name); len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return vs[0], true, nil
	}
	return "", false, fieldErr(name, "must be given once")
}

// decodeAttributeHeader percent-decodes the value v of the ce- header of
// the attribute name.
func decodeAttributeHeader(name, v string) (string, *FieldError) {
	s, err := DecodeHeader(v)
	if err != nil {
		reason := strings.TrimPrefix(err.Error(), ErrInvalidHeader.Error()+": ")
		return "", fieldErr(HeaderPrefix+name, "must be percent-encoded UTF-8 ("+reason+")")
	}
	return s, nil
}

// contentType returns the Content-Type header as a datacontenttype, nil
// when absent.
func contentType(h http.Header) (*string, *FieldError) {
	const field = "Content-Type"
	ct, ok, ferr := singleHeader(h, field)
	if ferr != nil || !ok {
		return nil, ferr
	}
	if ct == "" {
		return nil, fieldErr(field, "must not be empty when present")
	}
	if r := mediaTypeReason(ct); r != "" {
		return nil, fieldErr(field, r)
	}
	return &ct, nil
}

// SetBinaryHeaders sets the binary content mode headers of ev in h, those
// of EachBinaryHeader, each the one value of its key. The body is
// ev.Data().
func SetBinaryHeaders(h http.Header, ev *event.Event) {
	EachBinaryHeader(ev, func(key, value string) { h[key] = []string{value} })
}

// EachBinaryHeader calls fn for every binary content mode header of ev,
// with its canonical key (textproto.CanonicalMIMEHeaderKey, known without
// work for the spec's attributes) and its value: every attribute but
// datacontenttype as a percent-encoded "ce-" header, in EachAttribute's
// order, then datacontenttype, when set, as Content-Type. The body is
// ev.Data().
func EachBinaryHeader(ev *event.Event, fn func(key, value string)) {
	EachAttribute(ev, func(name, value string) {
		if name != "datacontenttype" {
			fn(binaryKey(name), EncodeHeader(value))
		}
	})
	if ct := ev.DataContentType(); ct != "" {
		fn("Content-Type", ct)
	}
}

// binaryKey is the canonical key of the "ce-" header of attribute name.
func binaryKey(name string) string {
	switch name {
	case "specversion":
		return "Ce-Specversion"
	case "id":
		return "Ce-Id"
	case "source":
		return "Ce-Source"
	case "type":
		return "Ce-Type"
	case "dataschema":
		return "Ce-Dataschema"
	case "subject":
		return "Ce-Subject"
	case "time":
		return "Ce-Time"
	case "traceparent":
		return "Ce-Traceparent"
	case "tracestate":
		return "Ce-Tracestate"
	case "partitionkey":
		return "Ce-Partitionkey"
	}
	return textproto.CanonicalMIMEHeaderKey(HeaderPrefix + name)
}
