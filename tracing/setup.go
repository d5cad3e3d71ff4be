package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsidecar/eventsidecar/config"
)

// instrumentationName names the tracer of the sidecar's own spans.
const instrumentationName = "github.com/eventsidecar/eventsidecar"

// Tracer returns the tracer the sidecar's instrumentation starts its spans
// with. It follows the global TracerProvider, so a tracer obtained before
// Setup starts real spans once Setup has run. Safe for concurrent use.
func Tracer() trace.Tracer {
	return otel.Tracer(instrumentationName)
}

// Setup installs the global TracerProvider and the W3C tracecontext and
// baggage propagators, from cfg.Exporter and the standard OTEL_* environment
// variables, and routes OpenTelemetry's own errors and diagnostics to log
// (slog.Default() when nil) instead of plain lines on stderr.
//
// The exporter is "none" (or ""): spans are not recorded, at next to no
// cost, but trace context propagates as if they were (a child keeps its
// parent's trace id and flags under a new span id; a root gets a new
// trace id, sampled); "otlp": OTLP over the protocol named by
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL ("grpc",
// "http/protobuf" (the default) or "http/json"), with endpoint, headers, TLS
// and timeout read by the exporter from the OTEL_EXPORTER_OTLP_* variables;
// or "stdout": one JSON line per span on os.Stdout (stderr carries the logs).
// Exported spans go through a batch span processor (OTEL_BSP_* variables).
// With an exporter the sampler is ParentBased(AlwaysSample) unless
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG say otherwise.
//
// The resource has service.name appID and service.version version (left out
// when ""); OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME override them,
// OTEL_SERVICE_NAME winning. A malformed OTEL_RESOURCE_ATTRIBUTES is an
// error.
//
// Setup changes process-wide state: call it once, at start-up. The caller
// must call shutdown at the very end of its own shutdown: it flushes the
// spans still buffered and stops the exporter, giving up when ctx ends.
func Setup(ctx context.Context, cfg config.Tracing, appID, version string, log *slog.Logger) (shutdown func(context.Context) error, err error) {
	res, err := newResource(ctx, appID, version)
	if err != nil {
		return nil, err
	}
	exp, err := newExporter(ctx, cfg.Exporter)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	otel.SetLogger(logr.FromSlogHandler(log.With("component", "opentelemetry").Handler()))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: opentelemetry error", "error", err)
	}))
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if exp == nil {
		otel.SetTracerProvider(passThrough{})
		return func(context.Context) error { return nil }, nil
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp))
	otel.SetTracerProvider(tp)
	return func(ctx context.Context) error {
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("tracing: shutdown: %w", err)
		}
		return nil
	}, nil
}

// newResource describes this sidecar: service.name and service.version,
// overridden by the OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME
// variables, and the SDK's telemetry.sdk.* attributes.
func newResource(ctx context.Context, appID, version string) (*resource.Resource, error) {
	attrs := []resource.Option{resource.WithTelemetrySDK(), resource.WithAttributes(semconv.ServiceName(appID))}
	if version != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceVersion(version)))
	}
	res, err := resource.New(ctx, append(attrs, resource.WithFromEnv())...)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return res, nil
}

// newExporter returns the span exporter named by exporter, or nil for
// "none".
func newExporter(ctx context.Context, exporter string) (sdktrace.SpanExporter, error) {
	switch exporter {
	case "", "none":
		return nil, nil
	case "stdout":
		exp, err := stdouttrace.New(stdouttrace.WithWriter(os.Stdout))
		if err != nil {
			return nil, fmt.Errorf("tracing: stdout exporter: %w", err)
		}
		return exp, nil
	case "otlp":
		return newOTLPExporter(ctx)
	default:
		return nil, fmt.Errorf("tracing: unknown exporter %q (want none, otlp or stdout)", exporter)
	}
}

// newOTLPExporter returns an OTLP exporter for the protocol the OTEL_*
// variables name; the exporter reads the rest of its settings itself.
func newOTLPExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch p := otlpProtocol(); p {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "http/protobuf", "http/json":
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("tracing: otlp exporter: unsupported protocol %q (want grpc, http/protobuf or http/json)", p)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: otlp exporter: %w", err)
	}
	return exp, nil
}

// otlpProtocol is the OTLP protocol for traces: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
// else OTEL_EXPORTER_OTLP_PROTOCOL, else the spec's default "http/protobuf".
func otlpProtocol() string {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := os.Getenv(name); p != "" {
			return p
		}
	}
	return "http/protobuf"
}
