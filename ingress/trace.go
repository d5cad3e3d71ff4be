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
// traceparent extension, else a new root. A span that is not recorded
// costs no name or attributes.
func startPublishSpan(ctx context.Context, req *request) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = otel.GetTextMapPropagator().Extract(ctx, eventCarrier(req.msgs[0].Event))
	}
	ctx, span := tracer.Start(ctx, "publish", trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetName("publish " + req.msgs[0].Topic)
		span.SetAttributes(publishAttributes(req)...)
	}
	return ctx, span
}

// publishAttributes are the publish span's attributes.
func publishAttributes(req *request) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 5)
	attrs = append(attrs,
		semconv.MessagingSystemKey.String("nats"),
		semconv.MessagingOperationTypeSend,
		semconv.MessagingOperationName("publish"),
		semconv.MessagingDestinationName(req.msgs[0].Topic),
	)
	if req.mode == wire.ModeBatch {
		return append(attrs, semconv.MessagingBatchMessageCount(len(req.msgs)))
	}
	return append(attrs, semconv.MessagingMessageID(req.msgs[0].Event.ID()))
}

// traceCarrier is a propagator's carrier of the W3C trace context alone:
// traceparent and tracestate, without a map. Other keys are not kept.
type traceCarrier struct {
	parent, state string
}

var _ propagation.TextMapCarrier = (*traceCarrier)(nil)

// Get returns the value of key, "" for any other than traceparent and
// tracestate.
func (c *traceCarrier) Get(key string) string {
	switch key {
	case extTraceParent:
		return c.parent
	case extTraceState:
		return c.state
	}
	return ""
}

// Set sets traceparent or tracestate, and ignores any other key.
func (c *traceCarrier) Set(key, value string) {
	switch key {
	case extTraceParent:
		c.parent = value
	case extTraceState:
		c.state = value
	}
}

// Keys lists the keys set.
func (c *traceCarrier) Keys() []string {
	var keys []string
	if c.parent != "" {
		keys = append(keys, extTraceParent)
	}
	if c.state != "" {
		keys = append(keys, extTraceState)
	}
	return keys
}

// eventCarrier reads an event's traceparent and tracestate extensions
// (each when a string).
func eventCarrier(ev *event.Event) *traceCarrier {
	c := &traceCarrier{}
	if v, ok := wire.Extension(ev, extTraceParent); ok {
		c.parent, _ = v.(string)
	}
	if v, ok := wire.Extension(ev, extTraceState); ok {
		c.state, _ = v.(string)
	}
	return c
}

// propagate gives every message the trace context of ctx's span, to be
// stored as NATS headers, and an event that has no traceparent extension
// gets one: the extension keeps the trace that started the transmission.
func propagate(ctx context.Context, msgs []broker.Message) {
	c := &traceCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, c)
	for i := range msgs {
		m := &msgs[i]
		m.TraceParent, m.TraceState = c.parent, c.state
		if _, has := wire.Extension(m.Event, extTraceParent); has || m.TraceParent == "" {
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
