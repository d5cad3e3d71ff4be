package broker

import (
	"bytes"
	"testing"
)

const euroPlain, euroEncoded = "Euro € 😀", "Euro%20%E2%82%AC%20%F0%9F%98%80"

func TestEncodeHeaders(t *testing.T) {
	ev := testEvent(t, "1")
	ev.SetSubject(euroPlain)
	ev.SetExtension("greeting", euroPlain)
	msg := Encode("events.orders.created", Message{Topic: "orders.created", Event: ev, MsgID: "key-1", Fingerprint: "fp-1",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "congo=t61rcWkgMzE"})

	want := map[string]string{
		"ce-specversion":     "1.0",
		"ce-id":              "1",
		"ce-source":          "/eventsidecar/test",
		"ce-type":            "com.example.order.created",
		"ce-datacontenttype": "application/json",
		"ce-dataschema":      "https://example.com/schema.json",
		"ce-subject":         euroEncoded,
		"ce-time":            "2024-05-06T07:08:09.123456789Z",
		"ce-partitionkey":    "customer-7",
		"ce-priority":        "3",
		"ce-greeting":        euroEncoded,
		"Nats-Msg-Id":        "key-1",
		FingerprintHeader:    "fp-1",
		"traceparent":        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"tracestate":         "congo=t61rcWkgMzE",
	}
	for name, value := range want {
		t.Run(name, func(t *testing.T) {
			if got := msg.Header.Values(name); len(got) != 1 || got[0] != value {
				t.Errorf("header %q = %q, want [%q]", name, got, value)
			}
		})
	}
	if len(msg.Header) != len(want) {
		t.Errorf("headers = %v, want exactly %d", msg.Header, len(want))
	}
	if msg.Subject != "events.orders.created" || !bytes.Equal(msg.Data, ev.Data()) {
		t.Errorf("subject %q data %q, want events.orders.created and %q", msg.Subject, msg.Data, ev.Data())
	}
}

func TestEncodeOmitsEmptyKeyAndFingerprint(t *testing.T) {
	msg := Encode("events.a", Message{Topic: "a", Event: testEvent(t, "1")})
	for _, name := range []string{"Nats-Msg-Id", FingerprintHeader} {
		if _, ok := msg.Header[name]; ok {
			t.Errorf("header %q present, want absent", name)
		}
	}
}
