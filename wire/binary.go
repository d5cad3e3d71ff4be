package wire

import (
	"net/http"
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
	attrs, names, ferr := attributeHeaders(h)
	if ferr != nil {
		return event.Event{}, ferr
	}
	if _, ok := attrs["specversion"]; !ok {
		return event.Event{}, fieldErr("ce-specversion", "is required")
	}
	ec := &event.EventContextV1{}
	for _, name := range names {
		field := HeaderPrefix + name
		if name == "datacontenttype" {
			return event.Event{}, fieldErr(field, "is not allowed in binary mode; send the Content-Type header")
		}
		if r := setAttribute(ec, name, attrs[name]); r != "" {
			return event.Event{}, fieldErr(field, r)
		}
	}
	if ec.DataContentType, ferr = contentType(h); ferr != nil {
		return event.Event{}, ferr
	}
	return newEvent(ec, body), nil
}

// attributeHeaders returns the percent-decoded values of the ce- headers of
// h by attribute name, and the names sorted.
func attributeHeaders(h http.Header) (map[string]string, []string, *FieldError) {
	keys := make([]string, 0, len(h))
	for k := range h {
		if len(k) >= len(HeaderPrefix) && strings.EqualFold(k[:len(HeaderPrefix)], HeaderPrefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	attrs := make(map[string]string, len(keys))
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		name := strings.ToLower(k[len(HeaderPrefix):])
		field := HeaderPrefix + name
		if r := nameReason(name); r != "" {
			return nil, nil, fieldErr(field, r)
		}
		if _, dup := attrs[name]; dup || len(h[k]) != 1 {
			return nil, nil, fieldErr(field, "must be given once")
		}
		v, ferr := decodeAttributeHeader(field, h[k][0])
		if ferr != nil {
			return nil, nil, ferr
		}
		attrs[name] = v
		names = append(names, name)
	}
	sort.Strings(names)
	return attrs, names, nil
}

// headerValues returns every value of the header name, matching the names
// in h case-insensitively (h may hold names that are not canonical).
func headerValues(h http.Header, name string) []string {
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

// decodeAttributeHeader percent-decodes the value v of the attribute
// header field.
func decodeAttributeHeader(field, v string) (string, *FieldError) {
	s, err := DecodeHeader(v)
	if err != nil {
		reason := strings.TrimPrefix(err.Error(), ErrInvalidHeader.Error()+": ")
		return "", fieldErr(field, "must be percent-encoded UTF-8 ("+reason+")")
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

// SetBinaryHeaders sets the binary content mode headers of ev in h: every
// attribute but datacontenttype as a percent-encoded "ce-" header, and
// datacontenttype, when set, as Content-Type. The body is ev.Data().
func SetBinaryHeaders(h http.Header, ev *event.Event) {
	EachAttribute(ev, func(name, value string) {
		if name != "datacontenttype" {
			h.Set(HeaderPrefix+name, EncodeHeader(value))
		}
	})
	if ct := ev.DataContentType(); ct != "" {
		h.Set("Content-Type", ct)
	}
}
