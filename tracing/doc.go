// Package tracing sets up OpenTelemetry for the sidecar and carries W3C
// trace context (https://www.w3.org/TR/trace-context/) from a publish to
// each delivery attempt, so the app's work joins the publisher's trace.
//
// Setup installs the global TracerProvider (exporter none, otlp or stdout,
// tuned by the standard OTEL_* variables) and the W3C propagators, Tracer
// starts the sidecar's spans, NATSCarrier and HeaderCarrier let a
// propagator read and write trace context in NATS message headers and in
// HTTP headers, and LogHandler adds trace_id and span_id to log records
// made within a span.
package tracing
