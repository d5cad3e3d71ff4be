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
	if m.MsgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, m.MsgID)
	}
	if m.Fingerprint != "" {
		msg.Header.Set(FingerprintHeader, m.Fingerprint)
	}
	if m.TraceParent != "" {
		msg.Header.Set(TraceParentHeader, m.TraceParent)
	}
	if m.TraceState != "" {
		msg.Header.Set(TraceStateHeader, m.TraceState)
	}
	return msg
}
