package wire

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// HeaderPrefix starts the name of every attribute header.
const HeaderPrefix = "ce-"

const upperHex = "0123456789ABCDEF"

// EncodeHeader percent-encodes a string attribute value for a header: space,
// double quote, percent and every byte outside printable ASCII
// (U+0021..U+007E) become %XX of their UTF-8 bytes.
func EncodeHeader(v string) string {
	if !needsEncoding(v) {
		return v
	}
	var b strings.Builder
	b.Grow(len(v) + 16)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '%' {
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&0x0f])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func needsEncoding(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '%' {
			return true
		}
	}
	return false
}

// DecodeHeader reverses EncodeHeader. It refuses a malformed %XX sequence
// and a result that is not valid UTF-8, with an error wrapping
// ErrInvalidHeader.
func DecodeHeader(v string) (string, error) {
	if strings.IndexByte(v, '%') < 0 {
		if !utf8.ValidString(v) {
			return "", fmt.Errorf("%w: not valid UTF-8", ErrInvalidHeader)
		}
		return v, nil
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			out = append(out, v[i])
			continue
		}
		if i+2 >= len(v) {
			return "", fmt.Errorf("%w: truncated percent-encoding at byte %d", ErrInvalidHeader, i)
		}
		hi, ok1 := unhex(v[i+1])
		lo, ok2 := unhex(v[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("%w: bad percent-encoding %q at byte %d", ErrInvalidHeader, v[i:i+3], i)
		}
		out = append(out, hi<<4|lo)
		i += 2
	}
	if !utf8.Valid(out) {
		return "", fmt.Errorf("%w: not valid UTF-8 after percent-decoding", ErrInvalidHeader)
	}
	return string(out), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// EachAttribute calls fn for every attribute set on ev, with its name and
// canonical string form (types.Format): the required and optional context
// attributes in spec order, then the extensions sorted by name.
// datacontenttype is included; callers that carry it as Content-Type skip
// it. Values are not percent-encoded.
func EachAttribute(ev *event.Event, fn func(name, value string)) {
	fn("specversion", ev.SpecVersion())
	fn("id", ev.ID())
	fn("source", ev.Source())
	fn("type", ev.Type())
	optional := [...]struct{ name, value string }{
		{"datacontenttype", ev.DataContentType()},
		{"dataschema", ev.DataSchema()},
		{"subject", ev.Subject()},
	}
	for _, a := range optional {
		if a.value != "" {
			fn(a.name, a.value)
		}
	}
	if t := ev.Time(); !t.IsZero() {
		fn("time", types.FormatTime(t))
	}
	exts := extensions(ev)
	var room [8]string
	for _, n := range sortedNames(exts, room[:0]) {
		s, err := types.Format(exts[n])
		if err != nil {
			s = fmt.Sprint(exts[n])
		}
		fn(n, s)
	}
}

// Extension returns the value of ev's extension name and whether it is
// set, without the copy of every extension that ev.Extensions() makes.
func Extension(ev *event.Event, name string) (any, bool) {
	v, ok := extensions(ev)[name]
	return v, ok
}

// extensions are ev's extensions, not copied (sdk-go's Extensions copies
// them): the caller must only read them.
func extensions(ev *event.Event) map[string]any {
	if ec, ok := ev.Context.(*event.EventContextV1); ok {
		return ec.Extensions
	}
	return ev.Extensions()
}

// sortedNames appends the names of m to names, sorted.
func sortedNames[V any](m map[string]V, names []string) []string {
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
