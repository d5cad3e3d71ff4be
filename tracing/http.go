package tracing

import (
	"net/http"
	"net/textproto"

	"go.opentelemetry.io/otel/propagation"
)

// headerCarrier is propagation.HeaderCarrier with the W3C keys'
// canonical forms known, so that reading them allocates nothing.
type headerCarrier http.Header

var (
	_ propagation.TextMapCarrier = headerCarrier(nil)
	_ propagation.ValuesGetter   = headerCarrier(nil)
)

// HeaderCarrier returns a carrier that lets a propagator read and write the
// trace context in the HTTP header h, as propagation.HeaderCarrier does; it
// uses the keys of W3C trace context and baggage without canonicalizing
// them on every call. The carrier shares h. Not safe for concurrent use
// unless h is only read.
func HeaderCarrier(h http.Header) propagation.TextMapCarrier {
	return headerCarrier(h)
}

// canonicalKeys are the canonical header keys of the propagators' keys.
var canonicalKeys = map[string]string{"traceparent": "Traceparent", "tracestate": "Tracestate", "baggage": "Baggage"}

// canonical is key's canonical header key.
func canonical(key string) string {
	if k, ok := canonicalKeys[key]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(key)
}

// Get returns the first value of key, or "".
func (c headerCarrier) Get(key string) string {
	if v := c[canonical(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns every value of key.
func (c headerCarrier) Values(key string) []string {
	return c[canonical(key)]
}

// Set replaces the values of key with value.
func (c headerCarrier) Set(key, value string) {
	c[canonical(key)] = []string{value}
}

// Keys lists the keys of the header.
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
