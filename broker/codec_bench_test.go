package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// BenchmarkEncode encodes the separate-process benchmark's event as the
// publish path stores it.
func BenchmarkEncode(b *testing.B) {
	ev := event.New()
	ev.SetID("evt-000-000000000042")
	ev.SetSource("/bench/orders")
	ev.SetType("com.example.order.created")
	ev.SetTime(time.Date(2025, 1, 2, 3, 4, 5, 678901000, time.UTC))
	ev.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if err := ev.SetData("application/json", []byte(`"`+strings.Repeat("x", 254)+`"`)); err != nil {
		b.Fatal(err)
	}
	m := Message{Topic: "bench.orders", Event: &ev, MsgID: "eCmMdH0fWJ2aXGk8oXh2cDjdwPVq1kNKX6lHqmvi3xs",
		Fingerprint: "AAoNqxn02ICW1SqUVe3WkS64FeewRaC_tFsOc1Aw0iI", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	b.ReportAllocs()
	for b.Loop() {
		Encode("events.bench.orders", m)
	}
}
