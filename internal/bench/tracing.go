package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracingMode is one of the tracing set-ups the tracing comparison runs
// its scenarios in.
type tracingMode struct {
	key, name string
	// aim is the most overhead, in percent, the project aims for; 0 for
	// the reference.
	aim float64
	// sampler is the SDK provider's sampler; nil for OpenTelemetry's
	// no-op defaults.
	sampler sdktrace.Sampler
	// exports makes the provider hand every span it samples to a batch
	// span processor over an exporter that discards them.
	exports bool
}

// The tracing modes' keys.
const (
	modeNone = "none"
	modeOff  = "off"
	modeOn   = "on"
)

// tracingModes are the modes compared, the reference first.
var tracingModes = []tracingMode{
	{key: modeNone, name: "no tracing"},
	{key: modeOff, name: "off: never sample", aim: 2, sampler: sdktrace.NeverSample()},
	{key: modeOn, name: "on: always sample, exporter discards", aim: 10, sampler: sdktrace.AlwaysSample(), exports: true},
}

// tracingShutdown bounds the flush of a mode's provider.
const tracingShutdown = 10 * time.Second

// installation is a tracing mode in place: the provider the global one
// forwards to, and what counts the spans made. Its counters are safe for
// concurrent use.
type installation struct {
	tp       trace.TracerProvider
	sdk      *sdktrace.TracerProvider // nil for the no-op provider
	exporter *discardExporter         // nil unless the mode exports
	started  atomic.Int64             // spans with a valid span context started through globalTracing
}

func (m tracingMode) newInstallation() *installation {
	if m.sampler == nil {
		return &installation{tp: noop.NewTracerProvider()}
	}
	in := &installation{}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithSampler(m.sampler)}
	if m.exports {
		in.exporter = &discardExporter{}
		opts = append(opts, sdktrace.WithBatcher(in.exporter))
	}
	in.sdk = sdktrace.NewTracerProvider(opts...)
	in.tp = in.sdk
	return in
}

// propagator is m's global propagator: none with no tracing, as
// OpenTelemetry's default; else W3C trace context and baggage, as
// tracing.Setup installs.
func (m tracingMode) propagator() propagation.TextMapPropagator {
	if m.sampler == nil {
		return propagation.NewCompositeTextMapPropagator()
	}
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// install makes m the process's tracing set-up, until uninstall.
func (m tracingMode) install() *installation {
	in := m.newInstallation()
	globalTracing.set(in)
	otel.SetTextMapPropagator(m.propagator())
	return in
}

// uninstall restores the no-op set-up, then shuts in's provider down,
// which flushes its spans to the exporter.
func (in *installation) uninstall(ctx context.Context) error {
	tracingModes[0].install()
	if in.sdk == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingShutdown)
	defer cancel()
	if err := in.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("bench: tracing: shutdown: %w", err)
	}
	return nil
}

// exported is the number of spans the exporter received.
func (in *installation) exported() int64 {
	if in.exporter == nil {
		return 0
	}
	return in.exporter.total()
}

// check fails unless the spans made are m's: none with no tracing; some
// with trace ids otherwise; and when m exports, the spans of the path
// measured (delivery or publish): the egress's consumer span and the
// webhook client's span, or the ingress's producer span.
func (in *installation) check(m tracingMode, delivery bool) error {
	started := in.started.Load()
	switch {
	case m.sampler == nil && started > 0:
		return fmt.Errorf("bench: tracing: %d spans with trace ids made with no tracing", started)
	case m.sampler != nil && started == 0:
		return errors.New("bench: tracing: no span made: the sidecar does not trace through the global TracerProvider")
	case in.exporter == nil:
		return nil
	}
	kinds := []trace.SpanKind{trace.SpanKindProducer}
	if delivery {
		kinds = []trace.SpanKind{trace.SpanKindConsumer, trace.SpanKindClient}
	}
	for _, k := range kinds {
		if in.exporter.count(k) == 0 {
			return fmt.Errorf("bench: tracing: the exporter received no %s span of %d", k, in.exporter.total())
		}
	}
	return nil
}

// globalTracing is the TracerProvider the tracing comparison installs as
// OpenTelemetry's global one, once per process, then points at each mode's
// provider in turn. It has to stay: the global provider hands the tracers
// taken from it before the first otel.SetTracerProvider (the ingress's and
// the egress's, taken as their packages initialise) to the first provider
// set, and never to another.
var globalTracing = newTracingSwitch()

// tracingSwitch is a TracerProvider whose tracers start their spans with
// the provider of its current installation. Safe for concurrent use.
type tracingSwitch struct {
	embedded.TracerProvider
	once sync.Once
	cur  atomic.Pointer[installation]
}

func newTracingSwitch() *tracingSwitch {
	s := &tracingSwitch{}
	s.cur.Store(tracingModes[0].newInstallation())
	return s
}

// set points s at in, installing s as the global provider the first time.
func (s *tracingSwitch) set(in *installation) {
	s.once.Do(func() { otel.SetTracerProvider(s) })
	s.cur.Store(in)
}

// Tracer returns a tracer that starts each span with the tracer of that
// name and options of the current installation's provider.
func (s *tracingSwitch) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return &switchTracer{s: s, name: name, opts: opts}
}

// switchTracer is a tracer of a tracingSwitch. Safe for concurrent use.
type switchTracer struct {
	embedded.Tracer
	s     *tracingSwitch
	name  string
	opts  []trace.TracerOption
	bound atomic.Pointer[boundTracer]
}

// boundTracer is the tracer of one installation's provider.
type boundTracer struct {
	in     *installation
	tracer trace.Tracer
}

// Start starts the span with the current installation's tracer, and counts
// it there when it has a valid span context.
func (t *switchTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	in := t.s.cur.Load()
	b := t.bound.Load()
	if b == nil || b.in != in {
		b = &boundTracer{in: in, tracer: in.tp.Tracer(t.name, t.opts...)}
		t.bound.Store(b)
	}
	ctx, span := b.tracer.Start(ctx, name, opts...)
	if span.SpanContext().IsValid() {
		in.started.Add(1)
	}
	return ctx, span
}

// discardExporter is the span exporter of the mode that exports: it
// counts the spans by kind and drops them. Safe for concurrent use.
type discardExporter struct {
	byKind [trace.SpanKindConsumer + 1]atomic.Int64
}

// ExportSpans counts spans and returns at once.
func (e *discardExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	for _, s := range spans {
		if k := s.SpanKind(); k >= 0 && int(k) < len(e.byKind) {
			e.byKind[k].Add(1)
		}
	}
	return nil
}

// Shutdown does nothing.
func (*discardExporter) Shutdown(context.Context) error { return nil }

func (e *discardExporter) count(kind trace.SpanKind) int64 {
	return e.byKind[kind].Load()
}

func (e *discardExporter) total() int64 {
	var n int64
	for i := range e.byKind {
		n += e.byKind[i].Load()
	}
	return n
}
