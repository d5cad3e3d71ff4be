package tracing

import (
	"context"
	"encoding/binary"
	"math/rand/v2"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// passThrough is the TracerProvider of exporter "none". Its spans record
// nothing, so they cost no attributes, events or buffers, but each has a
// span context of its own, so that trace context is carried on as a
// recording provider would carry it: a child keeps its parent's trace id,
// flags and trace state under a new span id; a root gets a new trace id,
// sampled, as ParentBased(AlwaysSample) would, so that the app's own
// parent-based tracer records the spans that follow.
type passThrough struct{ embedded.TracerProvider }

// Tracer returns the provider's one tracer, whatever the name.
func (passThrough) Tracer(string, ...trace.TracerOption) trace.Tracer { return passThroughTracer{} }

// passThroughTracer starts passThrough's spans.
type passThroughTracer struct{ embedded.Tracer }

// Start returns ctx holding a span that records nothing, with a new span
// id, a child of ctx's span unless the options ask for a new root.
func (passThroughTracer) Start(ctx context.Context, _ string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanContextFromContext(ctx)
	if len(opts) > 0 {
		if cfg := trace.NewSpanStartConfig(opts...); cfg.NewRoot() {
			parent = trace.SpanContext{}
		}
	}
	sc := trace.SpanContextConfig{SpanID: newSpanID(), TraceFlags: trace.FlagsSampled}
	if parent.IsValid() {
		sc.TraceID, sc.TraceFlags, sc.TraceState = parent.TraceID(), parent.TraceFlags(), parent.TraceState()
	} else {
		sc.TraceID = newTraceID()
	}
	ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(sc))
	return ctx, trace.SpanFromContext(ctx)
}

// newTraceID is a random trace id, never the invalid all-zero one.
func newTraceID() trace.TraceID {
	var id trace.TraceID
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:8], rand.Uint64())
		binary.BigEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id
}

// newSpanID is a random span id, never the invalid all-zero one.
func newSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}
