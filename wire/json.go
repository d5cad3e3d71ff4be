package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

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

// isNull reports whether raw is the JSON null.
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

// decodeJSONString decodes raw, a JSON value, as a JSON string, refusing
// invalid UTF-8 and unpaired surrogate escapes (which encoding/json would
// silently replace).
// It returns the string and "", or the reason it is refused.
func decodeJSONString(raw json.RawMessage) (string, string) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", "must be a JSON string"
	}
	if !utf8.Valid(raw) {
		return "", "must be valid UTF-8"
	}
	if len(raw) >= 2 && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		// A JSON value without escapes: the text as it stands.
		if s, ok := commonStrings[string(raw[1:len(raw)-1])]; ok {
			return s, ""
		}
		return string(raw[1 : len(raw)-1]), ""
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

// encodeJSONString returns s as a JSON string, without escaping <, > and &.
func encodeJSONString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes; invalid UTF-8 becomes U+FFFD
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}
