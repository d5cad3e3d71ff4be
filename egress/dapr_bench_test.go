package egress

import (
	"context"
	"io"
	"net/http"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkDaprAttempt makes attempts to a real loopback Dapr HTTP app
// answering 200 {"status":"SUCCESS"}, inside a process span of a
// recording provider that is sampled or not, with and without a signing secret.
func BenchmarkDaprAttempt(b *testing.B) {
	srv := newServer(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"status":"SUCCESS"}`)
	}))
	tp := sdktrace.NewTracerProvider()
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	recorded := tp.Tracer("bench")
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
			p := newTestDaprPost(b, srv.URL, ordersRoutes("/orders"), bc.secret)
			d := Delivery{Event: testEvent(), Attempt: 1, Route: "/orders"}
			b.ReportAllocs()
			for b.Loop() {
				ctx, span := recorded.Start(bc.parent, "process bench", trace.WithSpanKind(trace.SpanKindConsumer))
				if o := p.Attempt(ctx, d); o.Kind != Delivered {
					b.Fatalf("outcome %+v", o)
				}
				span.End()
			}
		})
	}
}
