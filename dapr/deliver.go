package dapr

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventsidecar/eventsidecar/wire"
)

// Fields are the members of Dapr's delivery envelope that the stored
// event does not hold.
type Fields struct {
	// PubSub and Topic are the subscription's pub/sub name and topic.
	PubSub, Topic string
	// TraceParent and TraceState are the W3C trace context of the
	// delivery (traceparent also written as traceid); an event's own
	// traceparent and tracestate extensions win.
	TraceParent, TraceState string
}

// The members Dapr's envelope adds to the event.
const (
	memberTopic      = "topic"
	memberPubSubName = "pubsubname"
	memberTraceID    = "traceid"
)

// Envelope is ev as Dapr delivers it to an app (contract §9): the
// CloudEvents JSON format written by wire.EncodeStructured, with data
// placed as Dapr places it (JSON for exactly application/json or no
// datacontenttype, data_base64 for application/octet-stream or data that
// is not UTF-8, else a JSON string: text, XML and other +json types
// alike), and the members topic, pubsubname, traceid, traceparent and
// tracestate ("" when there is none, as Dapr writes it). An extension of
// ev named topic, pubsubname or traceid gives way to Dapr's. Envelope
// only reads ev.
func Envelope(ev *event.Event, f Fields) []byte {
	bare := withoutEnvelopeMembers(ev)
	bare.DataEncoded = nil
	attrs := wire.EncodeStructured(&bare)
	var b bytes.Buffer
	b.Write(attrs[:len(attrs)-1])
	member := func(name string, value []byte) {
		b.WriteByte(',')
		b.Write(jsonString(name))
		b.WriteByte(':')
		b.Write(value)
	}
	if name, value := dataMember(ev); name != "" {
		member(name, value)
	}
	member(memberTopic, jsonString(f.Topic))
	member(memberPubSubName, jsonString(f.PubSub))
	exts := ev.Extensions()
	parent, own := exts[extTraceParent].(string)
	if !own {
		parent = f.TraceParent
		member(extTraceParent, jsonString(parent))
	}
	member(memberTraceID, jsonString(parent))
	if _, own := exts[extTraceState]; !own {
		member(extTraceState, jsonString(f.TraceState))
	}
	b.WriteByte('}')
	return b.Bytes()
}

// withoutEnvelopeMembers is a shallow copy of ev, its extensions cloned
// without those Dapr's envelope writes itself when it has any.
func withoutEnvelopeMembers(ev *event.Event) event.Event {
	exts := ev.Extensions()
	_, topic := exts[memberTopic]
	_, pubsub := exts[memberPubSubName]
	_, traceID := exts[memberTraceID]
	if !topic && !pubsub && !traceID {
		return *ev
	}
	c := ev.Clone()
	for _, name := range []string{memberTopic, memberPubSubName, memberTraceID} {
		_ = c.Context.SetExtension(name, nil)
	}
	return c
}

// dataMember is the member carrying ev's data in Dapr's envelope (see
// Envelope); none for no data.
func dataMember(ev *event.Event) (string, []byte) {
	data := ev.Data()
	if len(data) == 0 {
		return "", nil
	}
	switch mt := wire.MediaType(ev.DataContentType()); {
	case (mt == "" || mt == "application/json") && json.Valid(data):
		return "data", data
	case mt != "application/octet-stream" && utf8.Valid(data):
		return "data", jsonString(string(data))
	}
	return "data_base64", jsonString(base64.StdEncoding.EncodeToString(data))
}

// rawEnvelope is Dapr's envelope of a raw delivery, members in Dapr's
// order.
type rawEnvelope struct {
	DataBase64      string `json:"data_base64"`
	DataContentType string `json:"datacontenttype"`
	ID              string `json:"id"`
	PubSubName      string `json:"pubsubname"`
	Source          string `json:"source"`
	SpecVersion     string `json:"specversion"`
	Topic           string `json:"topic"`
	TraceID         string `json:"traceid,omitempty"`
	TraceParent     string `json:"traceparent,omitempty"`
	TraceState      string `json:"tracestate,omitempty"`
	Type            string `json:"type"`
}

// RawEnvelope is ev as Dapr delivers it to a subscription with
// rawPayload: the event's data, base64-encoded, in an envelope of
// datacontenttype application/octet-stream with the topic, pubsubname
// and trace members. Unlike Dapr, which makes up a random id and source
// "Dapr", the envelope keeps ev's id, source and type, so that the app
// can tell a resend; and the bytes are the event's data, which are those
// the publisher sent for a raw publish (Dapr's are the whole message, a
// CloudEvent for a publish that was not raw).
func RawEnvelope(ev *event.Event, f Fields) []byte {
	b, _ := json.Marshal(rawEnvelope{
		DataBase64: base64.StdEncoding.EncodeToString(ev.Data()), DataContentType: "application/octet-stream",
		ID: ev.ID(), PubSubName: f.PubSub, Source: ev.Source(), SpecVersion: event.CloudEventsVersionV1,
		Topic: f.Topic, TraceID: f.TraceParent, TraceParent: f.TraceParent, TraceState: f.TraceState, Type: ev.Type(),
	})
	return b
}

// jsonString is s as a JSON string.
func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}
