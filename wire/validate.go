package wire

import (
	"fmt"
	"mime"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// specVersion is the only CloudEvents version the sidecar accepts.
const specVersion = "1.0"

// maxNameLen is the longest attribute name the CloudEvents spec allows.
const maxNameLen = 20

// contextAttributes are the CloudEvents 1.0 context attributes; every other
// attribute is an extension.
var contextAttributes = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true,
	"datacontenttype": true, "dataschema": true, "subject": true, "time": true,
}

// Validate checks ev against every rule of contract §4.2 that the event
// model can express: specversion "1.0"; id, source and type present and
// non-empty; source a URI-reference; dataschema an absolute URI; subject
// non-empty when present; datacontenttype a media type; extension names
// [a-z0-9]{1,20} and not a reserved name; extension values of a CloudEvents
// type; every String value valid UTF-8 without control characters. A
// missing time is accepted (the caller sets it). The first violation found
// is returned as a *FieldError with Index -1; nil means valid. Validate only
// reads ev and is safe for concurrent use on events nobody modifies.
func Validate(ev *event.Event) error {
	if ev == nil || ev.Context == nil {
		return fieldErr("specversion", "is required")
	}
	if sv := ev.SpecVersion(); sv != specVersion {
		return fieldErr("specversion", fmt.Sprintf("must be %q, not %q", specVersion, sv))
	}
	ec := contextV1(ev)
	for _, check := range []func(*event.EventContextV1) *FieldError{
		checkRequired, checkOptional, checkExtensions,
	} {
		if ferr := check(ec); ferr != nil {
			return ferr
		}
	}
	return nil
}

// contextV1 is ev's context as a version 1.0 context, not copied when it
// is one; the caller must only read it.
func contextV1(ev *event.Event) *event.EventContextV1 {
	if ec, ok := ev.Context.(*event.EventContextV1); ok {
		return ec
	}
	return ev.Context.AsV1()
}

func checkRequired(ec *event.EventContextV1) *FieldError {
	required := [...]struct {
		name, value string
		rule        func(string) string
	}{
		{"id", ec.ID, stringReason},
		{"source", ec.Source.String(), uriRefReason},
		{"type", ec.Type, stringReason},
	}
	for _, a := range required {
		if a.value == "" {
			return fieldErr(a.name, "is required and must not be empty")
		}
		if r := a.rule(a.value); r != "" {
			return fieldErr(a.name, r)
		}
	}
	return nil
}

func checkOptional(ec *event.EventContextV1) *FieldError {
	if ct := ec.DataContentType; ct != nil {
		if r := optionalReason(*ct, mediaTypeReason); r != "" {
			return fieldErr("datacontenttype", r)
		}
	}
	if ds := ec.DataSchema; ds != nil {
		if r := optionalReason(ds.String(), absURIReason); r != "" {
			return fieldErr("dataschema", r)
		}
	}
	if t := ec.Time; t != nil {
		if r := timeRangeReason(t.Time); r != "" {
			return fieldErr("time", r)
		}
	}
	if s := ec.Subject; s != nil {
		if r := optionalReason(*s, stringReason); r != "" {
			return fieldErr("subject", r)
		}
	}
	return nil
}

func optionalReason(v string, rule func(string) string) string {
	if v == "" {
		return "must not be empty when present"
	}
	return rule(v)
}

func checkExtensions(ec *event.EventContextV1) *FieldError {
	var room [8]string
	for _, n := range sortedNames(ec.Extensions, room[:0]) {
		if r := extensionNameReason(n); r != "" {
			return fieldErr(n, r)
		}
		if r := extensionValueReason(ec.Extensions[n]); r != "" {
			return fieldErr(n, r)
		}
	}
	return nil
}

// extensionNameReason says why name cannot name an extension, or "".
func extensionNameReason(name string) string {
	if contextAttributes[name] {
		return "is a context attribute, not an extension"
	}
	return nameReason(name)
}

// nameReason says why name is not a valid attribute name, or "".
func nameReason(name string) string {
	switch {
	case name == "":
		return "attribute name must not be empty"
	case len(name) > maxNameLen:
		return fmt.Sprintf("attribute name must be at most %d characters long", maxNameLen)
	case name == "data" || name == "data_base64":
		return "is reserved for the event data and cannot be an attribute"
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return "attribute name must consist of lower-case letters a-z and digits 0-9 only"
		}
	}
	return ""
}

// extensionValueReason says why v is not a valid extension value, or "".
func extensionValueReason(v any) string {
	switch v := v.(type) {
	case string:
		return optionalReason(v, stringReason)
	case types.URIRef:
		return optionalReason(v.String(), uriRefReason)
	case types.URI:
		return optionalReason(v.String(), absURIReason)
	case int32, bool, []byte, types.Timestamp:
		return ""
	}
	return fmt.Sprintf("has Go type %T, which is not a CloudEvents type", v)
}

// stringReason says why s is not a valid CloudEvents String, or "".
func stringReason(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	for _, r := range s {
		if r <= 0x1f || (r >= 0x7f && r <= 0x9f) {
			return fmt.Sprintf("must not contain control characters (found U+%04X)", r)
		}
	}
	return ""
}

// uriChars are the characters RFC 3986 allows in a URI besides letters,
// digits and percent-encodings.
const uriChars = "-._~:/?#[]@!$&'()*+,;="

// parseURIRef parses s as an RFC 3986 URI-reference. url.Parse alone is too
// lax (it accepts and re-escapes spaces and non-ASCII), so the characters
// are checked first. The reason is "" on success.
func parseURIRef(s string) (*url.URL, string) {
	const reason = "must be a URI-reference (RFC 3986)"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return nil, reason + ": bad percent-encoding"
			}
			i += 2
		case c >= 0x80 || c <= ' ' || c == 0x7f:
			return nil, fmt.Sprintf("%s: byte 0x%02X must be percent-encoded", reason, c)
		case !isAlnum(c) && strings.IndexByte(uriChars, c) < 0:
			return nil, fmt.Sprintf("%s: %q must be percent-encoded", reason, c)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, reason
	}
	return u, ""
}

func uriRefReason(s string) string {
	_, r := parseURIRef(s)
	return r
}

// parseAbsURI parses s as an absolute URI (one with a scheme).
func parseAbsURI(s string) (*url.URL, string) {
	u, r := parseURIRef(s)
	if r != "" {
		return nil, "must be an absolute URI (RFC 3986)"
	}
	if !u.IsAbs() {
		return nil, "must be an absolute URI (RFC 3986), with a scheme"
	}
	return u, ""
}

func absURIReason(s string) string {
	_, r := parseAbsURI(s)
	return r
}

// mediaTypeReason says why ct is not an RFC 2046 media type, or "".
func mediaTypeReason(ct string) string {
	if isPlainMediaType(ct) {
		return ""
	}
	return parsedMediaTypeReason(ct)
}

// parsedMediaTypeReason is mediaTypeReason with mime.ParseMediaType.
func parsedMediaTypeReason(ct string) string {
	if r := stringReason(ct); r != "" {
		return r
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "must be a media type: " + strings.TrimPrefix(err.Error(), "mime: ")
	}
	if !strings.Contains(mt, "/") {
		return "must be a media type of the form type/subtype"
	}
	return ""
}

// isPlainMediaType reports whether ct is a type and a subtype of token
// characters (RFC 2045) joined by "/", without parameters or white space:
// a media type, as mime.ParseMediaType would find at greater cost.
func isPlainMediaType(ct string) bool {
	typ, sub, ok := strings.Cut(ct, "/")
	return ok && isToken(typ) && isToken(sub)
}

// tspecials are the characters RFC 2045 does not allow in a token.
const tspecials = `()<>@,;:\"/[]?=`

// isToken reports whether s is a non-empty RFC 2045 token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(tspecials, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// rfc3339Head is the date and time of RFC 3339's date-time production up
// to the seconds, 9 standing for a digit and T for "T" or "t".
const rfc3339Head = "9999-99-99T99:99:99"

// isRFC3339 reports whether s matches RFC 3339's date-time production:
// rfc3339Head, optional fractional seconds of at least one digit, then
// "Z", "z" or a numeric offset "+hh:mm" or "-hh:mm". time.Parse alone is
// laxer (it takes a comma before fractional seconds) and stricter (it
// refuses a lower-case "t" or "z"), so the syntax is checked first.
func isRFC3339(s string) bool {
	if len(s) <= len(rfc3339Head) {
		return false
	}
	for i := 0; i < len(rfc3339Head); i++ {
		switch c, want := s[i], rfc3339Head[i]; want {
		case '9':
			if !isDigit(c) {
				return false
			}
		case 'T':
			if c != 'T' && c != 't' {
				return false
			}
		default:
			if c != want {
				return false
			}
		}
	}
	zone := s[len(rfc3339Head):]
	if zone[0] == '.' {
		n := 1
		for n < len(zone) && isDigit(zone[n]) {
			n++
		}
		if n == 1 {
			return false
		}
		zone = zone[n:]
	}
	switch {
	case zone == "Z" || zone == "z":
		return true
	case len(zone) == 6 && (zone[0] == '+' || zone[0] == '-'):
		return isDigit(zone[1]) && isDigit(zone[2]) && zone[3] == ':' && isDigit(zone[4]) && isDigit(zone[5])
	}
	return false
}

// parseTime parses an RFC 3339 timestamp; the reason is "" on success.
func parseTime(s string) (time.Time, string) {
	const reason = "must be an RFC 3339 timestamp, e.g. 2024-05-01T12:00:00Z"
	if !isRFC3339(s) {
		return time.Time{}, reason
	}
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
	if err != nil {
		msg := err.Error()
		return time.Time{}, reason + ": " + msg[strings.LastIndex(msg, ": ")+2:]
	}
	return t, timeRangeReason(t)
}

// timeRangeReason refuses a time whose UTC form (the canonical one the
// sidecar writes) would fall outside RFC 3339's four-digit years.
func timeRangeReason(t time.Time) string {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return "must lie between the years 0000 and 9999 in UTC"
	}
	return ""
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func isAlnum(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}
