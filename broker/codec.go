package broker

import (
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/wire"
)

// FingerprintHeader is the NATS header carrying a Message's Fingerprint, so
// that a duplicate can be compared with the stored original.
const FingerprintHeader = "Eventsidecar-Fingerprint"

// The NATS headers carrying an event's W3C trace context.
const (
	TraceParentHeader = "traceparent"
	TraceStateHeader  = "tracestate"
)

// Encode returns the NATS message storing m on subject: m.Event in the
// CloudEvents NATS binding's binary content mode (wire.EncodeNATS, which
// wire.DecodeNATS reads back), m.MsgID as Nats-Msg-Id and m.Fingerprint as
// FingerprintHeader, and the trace context as TraceParentHeader and
// TraceStateHeader (each when not empty). The payload aliases m.Event's
// data.
func Encode(subject string, m Message) *nats.Msg {
	msg := &nats.Msg{Subject: subject}
	msg.Header, msg.Data = wire.EncodeNATS(m.Event)
	values := make([]string, 0, 4)
	// Set each as nats.Header.Set does, the values sharing one array.
	set := func(key, value string) {
		if value != "" {
			values = append(values, value)
			n := len(values)
			msg.Header[key] = values[n-1 : n : n]
		}
	}
	set(jetstream.MsgIDHeader, m.MsgID)
	set(FingerprintHeader, m.Fingerprint)
	set(TraceParentHeader, m.TraceParent)
	set(TraceStateHeader, m.TraceState)
	return msg
}
