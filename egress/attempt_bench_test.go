package egress

import (
	"context"
	"net/http"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// attemptBenchCase is one way of making an attempt in a benchmark: inside
// a process span whose trace is sampled or not, with a signing secret or
// none.
type attemptBenchCase struct {
	name   string
	parent context.Context
	secret string
}

// benchAttempts runs attempt (given the process span's context) in each
// attemptBenchCase, the process spans from an SDK provider, so that a
// sampled one is recorded with its attempt span as with an exporter.
func benchAttempts(b *testing.B, attempt func(b *testing.B, secret string) func(ctx context.Context) Outcome) {
	tp := sdktrace.NewTracerProvider()
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	recorded := tp.Tracer("bench")
	unsampled := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, Remote: true,
	}))
	for _, bc := range []attemptBenchCase{
		{"sampled", context.Background(), ""},
		{"unsampled", unsampled, ""},
		{"unsampled signed", unsampled, testSecret},
	} {
		b.Run(bc.name, func(b *testing.B) {
			do := attempt(b, bc.secret)
			b.ReportAllocs()
			for b.Loop() {
				ctx, span := recorded.Start(bc.parent, "process bench", trace.WithSpanKind(trace.SpanKindConsumer))
				if o := do(ctx); o.Kind != Delivered {
					b.Fatalf("outcome %+v", o)
				}
				span.End()
			}
		})
	}
}

// BenchmarkAttempt makes binary-mode attempts to a real loopback webhook
// answering 204, as benchAttempts does.
func BenchmarkAttempt(b *testing.B) {
	srv := newServer(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	benchAttempts(b, func(b *testing.B, secret string) func(context.Context) Outcome {
		sub := testSubscription(srv.URL)
		sub.SigningSecret = secret
		w, err := NewWebhook(sub)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(w.CloseIdleConnections)
		d := Delivery{Event: testEvent(), Attempt: 1}
		return func(ctx context.Context) Outcome { return w.Attempt(ctx, d) }
	})
}
