package tracing

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// Lengths of the parts of a traceparent in hex digits.
const (
	traceIDLen  = 32
	parentIDLen = 16
	// version00Len is the length of a version-00 traceparent:
	// "00-" + trace-id + "-" + parent-id + "-" + flags.
	version00Len = 2 + 1 + traceIDLen + 1 + parentIDLen + 1 + 2
)

// sampledFlag is the only flag defined by version 00.
const sampledFlag = 0x01

// parent is the part of a traceparent that a child keeps.
type parent struct {
	version, traceID, flags string
}

// Child returns a W3C traceparent that is a child of traceparent: the same
// version, trace-id and flags with a fresh random non-zero parent-id. For
// "" or an invalid value (wrong length or layout, upper-case or non-hex
// digits, version ff, an all-zero trace-id or parent-id) it returns a new
// root: a random non-zero trace-id and parent-id, flags 01 (sampled). A
// traceparent of a later version than 00 is parsed as the spec says and
// continued as version 00, the version this package writes, keeping only
// the sampled flag. Safe for concurrent use.
func Child(traceparent string) string {
	p, ok := parse(traceparent)
	if !ok {
		p = parent{version: "00", traceID: randomID(traceIDLen / 2), flags: "01"}
	}
	return p.version + "-" + p.traceID + "-" + randomID(parentIDLen/2) + "-" + p.flags
}

// parse reads the version, trace-id and flags of a valid traceparent.
func parse(s string) (parent, bool) {
	if len(s) < version00Len || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return parent{}, false
	}
	version, traceID, parentID, flags := s[:2], s[3:35], s[36:52], s[53:55]
	if !isHex(version) || version == "ff" || !isHex(traceID) || !isHex(parentID) || !isHex(flags) {
		return parent{}, false
	}
	if isZero(traceID) || isZero(parentID) {
		return parent{}, false
	}
	if version == "00" {
		if len(s) != version00Len {
			return parent{}, false
		}
		return parent{version: version, traceID: traceID, flags: flags}, true
	}
	if len(s) > version00Len && s[version00Len] != '-' {
		return parent{}, false
	}
	b, _ := hex.DecodeString(flags)
	return parent{version: "00", traceID: traceID, flags: hex.EncodeToString([]byte{b[0] & sampledFlag})}, true
}

// isHex reports whether s is made of lower-case hex digits only.
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func isZero(s string) bool {
	return strings.Trim(s, "0") == ""
}

// randomID returns n random bytes, not all zero, in lower-case hex.
func randomID(n int) string {
	b := make([]byte, n)
	for {
		_, _ = rand.Read(b) // crypto/rand.Read never returns an error
		for _, c := range b {
			if c != 0 {
				return hex.EncodeToString(b)
			}
		}
	}
}
