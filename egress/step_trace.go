package egress

import (
	"context"

	"go.opentelemetry.io/otel"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsidecar/eventsidecar/tracing"
)

// traceStep runs the rest of an event's delivery in its "process
// <subscription>" span; the other steps mark their decisions on it.
func traceStep(subscription string) middleware {
	name := "process " + subscription
	return func(next handler) handler {
		return func(ctx context.Context, it *item) result {
			ctx, span := startProcessSpan(ctx, name, subscription, it)
			defer span.End()
			return next(ctx, it)
		}
	}
}

// consumerKind makes a span a consumer span, made once.
var consumerKind = trace.WithSpanKind(trace.SpanKindConsumer)

// startProcessSpan starts the consumer span called name of an event of
// subscription: a child of the publisher's span when the stored message
// carries its trace context, else a new root. A span that is not recorded
// costs no attributes.
func startProcessSpan(ctx context.Context, name, subscription string, it *item) (context.Context, trace.Span) {
	ctx = otel.GetTextMapPropagator().Extract(ctx, tracing.NATSCarrier(it.msg.Headers()))
	ctx, span := tracer.Start(ctx, name, consumerKind)
	if span.IsRecording() {
		span.SetAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingOperationName("process"),
			semconv.MessagingDestinationName(it.msg.Subject()),
			semconv.MessagingConsumerGroupName(subscription),
			semconv.MessagingMessageID(it.ev.ID()),
		)
	}
	return ctx, span
}
