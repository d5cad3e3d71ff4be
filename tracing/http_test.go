package tracing

import (
	"net/http"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/propagation"
)

// TestHeaderCarrierAsOpenTelemetrys checks that HeaderCarrier reads and
// writes as propagation.HeaderCarrier does.
func TestHeaderCarrierAsOpenTelemetrys(t *testing.T) {
	h := http.Header{
		"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		"Tracestate":  {"congo=t61rcWkgMzE"},
		"Baggage":     {"a=1", "b=2"},
		"X-Other":     {"x"},
		"traceparent": {"not canonical: never read"},
	}
	ours, theirs := HeaderCarrier(h), propagation.HeaderCarrier(h)
	for _, key := range []string{"traceparent", "Traceparent", "TRACESTATE", "tracestate", "baggage", "x-other", "missing"} {
		if got, want := ours.Get(key), theirs.Get(key); got != want {
			t.Errorf("Get(%q) = %q, want %q", key, got, want)
		}
		if got, want := ours.(propagation.ValuesGetter).Values(key), theirs.Values(key); !slices.Equal(got, want) {
			t.Errorf("Values(%q) = %q, want %q", key, got, want)
		}
	}
	if got, want := slices.Sorted(slices.Values(ours.Keys())), slices.Sorted(slices.Values(theirs.Keys())); !slices.Equal(got, want) {
		t.Errorf("Keys = %q, want %q", got, want)
	}
	for _, key := range []string{"traceparent", "x-other"} {
		ours.Set(key, "v")
		if got := h.Values(key); !slices.Equal(got, []string{"v"}) {
			t.Errorf("after Set(%q), its values are %q, want [v]", key, got)
		}
	}
}

func BenchmarkHeaderCarrierGet(b *testing.B) {
	h := http.Header{"Content-Type": {"application/json"}, "Ce-Id": {"1"}}
	c := HeaderCarrier(h)
	b.ReportAllocs()
	for b.Loop() {
		c.Get("traceparent")
		c.Get("baggage")
	}
}
