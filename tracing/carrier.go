package tracing

import (
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
)

// natsCarrier adapts a NATS message header to a propagator. Unlike
// http.Header, nats.Header keys are case-sensitive and kept as given, so
// the carrier uses the propagators' keys ("traceparent", "tracestate",
// "baggage") exactly.
type natsCarrier nats.Header

var (
	_ propagation.TextMapCarrier = natsCarrier(nil)
	_ propagation.ValuesGetter   = natsCarrier(nil)
)

// NATSCarrier returns a carrier that lets a propagator read and write the
// trace context in h: Get, Values and Set use the key exactly as given (the
// propagators use lower-case keys), and Keys lists every key of h. The
// carrier shares h: writes through it change h, and Set needs a non-nil h.
// Not safe for concurrent use unless h is only read.
func NATSCarrier(h nats.Header) propagation.TextMapCarrier {
	return natsCarrier(h)
}

// Get returns the first value of key, or "".
func (c natsCarrier) Get(key string) string {
	return nats.Header(c).Get(key)
}

// Values returns every value of key.
func (c natsCarrier) Values(key string) []string {
	return nats.Header(c).Values(key)
}

// Set replaces the values of key with value.
func (c natsCarrier) Set(key, value string) {
	nats.Header(c).Set(key, value)
}

// Keys lists the keys of the header.
func (c natsCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
