package ingress

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/tracing"
	"github.com/eventsidecar/eventsidecar/wire"
)

// The CloudEvents distributed tracing extension's attributes.
const (
	extTraceParent = "traceparent"
	extTraceState  = "tracestate"
)

var tracer = tracing.Tracer()

// startPublishSpan starts the request's "publish <topic>" producer span, a
// child of ctx's trace context (the request's), else of the first event's
// traceparent extension, else a new root.
func startPublishSpan(ctx context.Context, req *request) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = otel.GetTextMapPropagator().Extract(ctx, eventCarrier(req.msgs[0].Event))
	}
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKey.String("nats"),
		semconv.MessagingOperationTypeSend,
		semconv.MessagingOperationName("publish"),
		semconv.MessagingDestinationName(req.msgs[0].Topic),
	}
	if req.mode == wire.ModeBatch {
		attrs = append(attrs, semconv.MessagingBatchMessageCount(len(req.msgs)))
	} else {
		attrs = append(attrs, semconv.MessagingMessageID(req.msgs[0].Event.ID()))
	}
	return tracer.Start(ctx, "publish "+req.msgs[0].Topic,
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
}

// eventCarrier reads an event's traceparent and tracestate extensions.
func eventCarrier(ev *event.Event) propagation.MapCarrier {
	c := propagation.MapCarrier{}
	for _, name := range []string{extTraceParent, extTraceState} {
		if v, ok := ev.Extensions()[name].(string); ok {
			c[name] = v
		}
	}
	return c
}

// propagate gives every message the trace context of ctx's span, to be
// stored as NATS headers, and an event that has no traceparent extension
// gets one: the extension keeps the trace that started the transmission.
func propagate(ctx context.Context, msgs []broker.Message) {
	c := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, c)
	for i := range msgs {
		m := &msgs[i]
		m.TraceParent, m.TraceState = c[extTraceParent], c[extTraceState]
		if _, has := m.Event.Extensions()[extTraceParent]; has || m.TraceParent == "" {
			continue
		}
		m.Event.SetExtension(extTraceParent, m.TraceParent)
		if m.TraceState != "" {
			m.Event.SetExtension(extTraceState, m.TraceState)
		}
	}
}

// endPublishSpan records how the request ended and ends the span.
func endPublishSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
