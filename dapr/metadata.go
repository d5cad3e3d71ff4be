package dapr

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Metadata is a Dapr request's metadata: the metadata.* query parameters
// of an HTTP request with the prefix removed (see FromQuery), or a gRPC
// request's metadata map. Keys keep their case; each accessor matches them
// as Dapr does.
type Metadata map[string]string

// queryPrefix starts the query parameters that are metadata.
const queryPrefix = "metadata."

// The metadata keys the sidecar reads.
const (
	keyRawPayload   = "rawPayload"
	keyTTL          = "ttl"
	keyTTLInSeconds = "ttlInSeconds"
	overridePrefix  = "cloudevent."
)

// FromQuery returns the metadata of an HTTP request's query q: each key
// starting with "metadata.", without it, and its first value.
func FromQuery(q url.Values) Metadata {
	md := Metadata{}
	for k, v := range q {
		if name, ok := strings.CutPrefix(k, queryPrefix); ok && len(v) > 0 {
			md[name] = v[0]
		}
	}
	return md
}

// Merge is the metadata of a bulk publish's entry whose own metadata is
// m: every key of m, and the request's keys m lacks. As in Dapr, an entry
// without metadata (nil m) takes nothing from the request.
func (m Metadata) Merge(request Metadata) Metadata {
	if m == nil {
		return nil
	}
	merged := maps.Clone(request)
	if merged == nil {
		merged = Metadata{}
	}
	maps.Copy(merged, m)
	return merged
}

// RawPayload reports whether "rawPayload" (exactly that key) asks for the
// body to be published unwrapped: a Go boolean ("true", "1", "false",
// ...), also when JSON-encoded once more ("\"true\""); absent or empty is
// false. Another value is an error.
func (m Metadata) RawPayload() (bool, error) {
	v, ok := m[keyRawPayload]
	if !ok || v == "" {
		return false, nil
	}
	raw, err := strconv.ParseBool(Unquote(v))
	if err != nil {
		return false, fmt.Errorf("%s value must be a valid boolean: actual is '%s'", keyRawPayload, v)
	}
	return raw, nil
}

// TTL is the time to live asked for by "ttlInSeconds" or "ttl" (either
// key in any case): a Go duration or a positive number of seconds; ok is
// false when neither is given. Unlike Dapr, which ignores a bad value,
// another value is an error.
func (m Metadata) TTL() (ttl time.Duration, ok bool, err error) {
	v, found := m.lookupFold(keyTTL, keyTTLInSeconds)
	if !found || v == "" {
		return 0, false, nil
	}
	v = Unquote(v)
	if d, err := time.ParseDuration(v); err == nil {
		return max(d, 0), true, nil
	}
	secs, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err != nil:
		return 0, false, fmt.Errorf("%s value must be a valid integer: actual is '%s'", keyTTL, v)
	case secs <= 0:
		return 0, false, fmt.Errorf("%s value must be higher than zero: actual is '%d'", keyTTL, secs)
	case secs > int64(maxTTL/time.Second):
		return maxTTL, true, nil
	}
	return time.Duration(secs) * time.Second, true, nil
}

// maxTTL bounds a time to live given in seconds, as Dapr does.
const maxTTL = time.Duration(1<<63 - 1)

// lookupFold returns the value of the first of keys present in m, matched
// without regard to case.
func (m Metadata) lookupFold(keys ...string) (string, bool) {
	for _, want := range keys {
		for k, v := range m {
			if strings.EqualFold(k, want) {
				return v, true
			}
		}
	}
	return "", false
}

// Overrides are the attributes a publish's metadata sets on the event it
// wraps (metadata.cloudevent.id, .source, .type, .subject, .traceparent,
// .tracestate; .traceid when there is no .traceparent). Empty fields set
// nothing.
type Overrides struct {
	// ID, Source, Type and Subject are the attributes of those names.
	ID, Source, Type, Subject string
	// TraceParent and TraceState are the distributed tracing extension's.
	TraceParent, TraceState string
}

// Overrides returns the "cloudevent." keys of m, matched without regard
// to case as Dapr does.
func (m Metadata) Overrides() Overrides {
	get := func(name string) string {
		v, _ := m.lookupFold(overridePrefix + name)
		return v
	}
	o := Overrides{ID: get("id"), Source: get("source"), Type: get("type"), Subject: get("subject"),
		TraceParent: get("traceparent"), TraceState: get("tracestate")}
	if o.TraceParent == "" {
		o.TraceParent = get("traceid")
	}
	return o
}

// Unquote returns v without one level of JSON string encoding when v is a
// JSON string literal ("\"true\"" is "true"), else v itself: the
// JavaScript SDK JSON-encodes metadata values once more than Dapr expects.
func Unquote(v string) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	var s string
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return v
	}
	return s
}
