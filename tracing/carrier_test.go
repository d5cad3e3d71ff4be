package tracing

import (
	"context"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// A W3C traceparent's ids from the spec's examples.
const (
	validTraceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	validParentID = "00f067aa0ba902b7"
)

func TestNATSCarrierRoundTrip(t *testing.T) {
	ctx, sc := spanContext(t)
	ts, err := trace.ParseTraceState("vendor=value")
	if err != nil {
		t.Fatal(err)
	}
	sc = sc.WithTraceState(ts)
	ctx = trace.ContextWithSpanContext(ctx, sc)
	member, err := baggage.NewMember("tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	bag, err := baggage.New(member)
	if err != nil {
		t.Fatal(err)
	}
	ctx = baggage.ContextWithBaggage(ctx, bag)
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

	h := nats.Header{}
	prop.Inject(ctx, NATSCarrier(h))
	for _, key := range []string{"traceparent", "tracestate", "baggage"} {
		if h.Get(key) == "" {
			t.Errorf("header %q not set; header = %v", key, h)
		}
	}
	if want := "00-" + validTraceID + "-" + validParentID + "-01"; h.Get("traceparent") != want {
		t.Errorf("traceparent = %q, want %q", h.Get("traceparent"), want)
	}
	if keys := NATSCarrier(h).Keys(); len(keys) != 3 {
		t.Errorf("Keys() = %v, want traceparent, tracestate and baggage", keys)
	}

	got := prop.Extract(context.Background(), NATSCarrier(h))
	gotSC := trace.SpanContextFromContext(got)
	if !gotSC.Equal(sc.WithRemote(true)) {
		t.Errorf("extracted span context %v, want %v", gotSC, sc)
	}
	if v := baggage.FromContext(got).Member("tenant").Value(); v != "acme" {
		t.Errorf("extracted baggage tenant = %q, want acme", v)
	}
}

func TestNATSCarrierIsCaseSensitive(t *testing.T) {
	h := nats.Header{"Traceparent": {"00-" + validTraceID + "-" + validParentID + "-01"}, "other": {"x"}}
	c := NATSCarrier(h)
	if got := c.Get("traceparent"); got != "" {
		t.Errorf(`Get("traceparent") = %q from a "Traceparent" key, want ""`, got)
	}
	if sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), c)); sc.IsValid() {
		t.Errorf("extracted %v from a mis-cased key, want none", sc)
	}
	keys := c.Keys()
	slices.Sort(keys)
	if want := []string{"Traceparent", "other"}; !slices.Equal(keys, want) {
		t.Errorf("Keys() = %v, want %v", keys, want)
	}
}

func TestNATSCarrierMultipleBaggageHeaders(t *testing.T) {
	h := nats.Header{"baggage": {"a=1", "b=2"}}
	bag := baggage.FromContext(propagation.Baggage{}.Extract(context.Background(), NATSCarrier(h)))
	if bag.Member("a").Value() != "1" || bag.Member("b").Value() != "2" {
		t.Errorf("baggage = %v, want a=1 and b=2", bag)
	}
}
