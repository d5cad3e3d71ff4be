// Package tracing carries W3C trace context (the traceparent and tracestate
// headers of https://www.w3.org/TR/trace-context/) from a publish to each
// delivery attempt: a delivery sends a child of the publisher's traceparent,
// so the app's work joins the publisher's trace.
package tracing
