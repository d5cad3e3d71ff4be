package egress

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// BenchmarkAttempt makes binary-mode attempts to a real loopback webhook
// answering 204, inside a process span that is recorded (sampled) or not,
// with and without a signing secret.
func BenchmarkAttempt(b *testing.B) {
	srv := newServer(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	unsampled := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, Remote: true,
	}))
	for _, bc := range []struct {
		name   string
		parent context.Context
		secret string
	}{
		{"sampled", context.Background(), ""},
		{"unsampled", unsampled, ""},
		{"unsampled signed", unsampled, testSecret},
	} {
		b.Run(bc.name, func(b *testing.B) {
			sub := testSubscription(srv.URL)
			sub.SigningSecret = bc.secret
			w, err := NewWebhook(sub)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(w.CloseIdleConnections)
			d := Delivery{Event: testEvent(), Attempt: 1}
			b.ReportAllocs()
			for b.Loop() {
				ctx, span := tracer.Start(bc.parent, "process bench", trace.WithSpanKind(trace.SpanKindConsumer))
				if o := w.Attempt(ctx, d); o.Kind != Delivered {
					b.Fatalf("outcome %+v", o)
				}
				span.End()
			}
		})
	}
}
