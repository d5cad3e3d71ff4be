package egress

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/eventsidecar/eventsidecar/tracing"
)

var tracer = tracing.Tracer()

// The attributes of an attempt's HTTP client span.
const (
	attrAttempt = attribute.Key("eventsidecar.attempt")
	attrOutcome = attribute.Key("eventsidecar.outcome")
)

// attemptSpanName is the name of an attempt's client span, the otelhttp
// transport's for a POST.
const attemptSpanName = "HTTP POST"

// traceHeaders is ctx's trace context as traceparent and tracestate.
func traceHeaders(ctx context.Context) (parent, state string) {
	var c traceCarrier
	otel.GetTextMapPropagator().Inject(ctx, &c)
	return c.parent, c.state
}

// traceCarrier keeps the traceparent and tracestate a propagator writes,
// without a map (propagation.TextMapCarrier).
type traceCarrier struct{ parent, state string }

// Set keeps value when key is traceparent or tracestate.
func (c *traceCarrier) Set(key, value string) {
	switch key {
	case "traceparent":
		c.parent = value
	case "tracestate":
		c.state = value
	}
}

// Get returns the value kept for key, or "".
func (c *traceCarrier) Get(key string) string {
	switch key {
	case "traceparent":
		return c.parent
	case "tracestate":
		return c.state
	}
	return ""
}

// Keys lists traceparent and tracestate.
func (c *traceCarrier) Keys() []string { return []string{"traceparent", "tracestate"} }

// clientKind makes a span a client span, made once.
var clientKind = trace.WithSpanKind(trace.SpanKindClient)

// tracerName is the name of the sidecar's tracer (tracing.Tracer's).
const tracerName = "github.com/eventsidecar/eventsidecar"

// startAttemptSpan starts the HTTP client span of an attempt, number n,
// to t, as a child of ctx's span, with the attributes the otelhttp
// transport gives a request to the same URL and the attempt number. The
// span comes from the provider of ctx's span, as the otelhttp transport
// took it; without a span in ctx, it is the root of a new trace of the
// sidecar's tracer. When ctx's span is not recorded, neither would its
// child be (the samplers decide by the parent or the trace id): it
// returns ctx and a span that does nothing, and the request carries
// ctx's trace context.
func startAttemptSpan(ctx context.Context, t *target, n int) (context.Context, trace.Span) {
	tr := tracer
	if parent := trace.SpanFromContext(ctx); parent.SpanContext().IsValid() {
		if !parent.IsRecording() {
			return ctx, noop.Span{}
		}
		tr = parent.TracerProvider().Tracer(tracerName)
	}
	ctx, span := tr.Start(ctx, attemptSpanName, clientKind)
	span.SetAttributes(t.spanAttrs...)
	span.SetAttributes(attrAttempt.Int(n))
	return ctx, span
}

// attemptAttributes are the attributes of every attempt span of the
// endpoint u, as the otelhttp transport sets them: the method, the URL
// without its user information, the server's address and port (unless
// the scheme's default) and the protocol version.
func attemptAttributes(u *url.URL) []attribute.KeyValue {
	full := *u
	full.User = nil
	attrs := []attribute.KeyValue{
		semconv.HTTPRequestMethodPost,
		semconv.URLFull(full.String()),
		semconv.ServerAddress(u.Hostname()),
	}
	port, err := strconv.Atoi(u.Port())
	if err == nil && port > 0 && port != defaultPort(u.Scheme) {
		attrs = append(attrs, semconv.ServerPort(port))
	}
	return append(attrs, semconv.NetworkProtocolVersion("1.1"))
}

// defaultPort is the port of an http or https URL without one.
func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

// answerAttemptSpan marks an attempt's span with the answer, as the
// otelhttp transport does (status code; for a status of 400 or more, or
// below 100, the error type and an error status), and with the outcome o.
func answerAttemptSpan(span trace.Span, resp *http.Response, o Outcome) {
	if !span.IsRecording() {
		return
	}
	code := resp.StatusCode
	if code > 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCode(code))
	}
	if code >= 400 || code < 100 {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(code)))
	}
	if _, version, _ := strings.Cut(resp.Proto, "/"); version != "" {
		span.SetAttributes(semconv.NetworkProtocolVersion(version))
	}
	switch {
	case code < 100 || code >= 600:
		span.SetStatus(codes.Error, "Invalid HTTP status code "+strconv.Itoa(code))
	case code >= 400:
		span.SetStatus(codes.Error, "")
	}
	span.SetAttributes(attrOutcome.String(o.Kind.String()))
}

// failAttemptSpan marks an attempt's span with the error that ended it or
// its answer's body, as the otelhttp transport does.
func failAttemptSpan(span trace.Span, err error) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(semconv.ErrorType(err))
	span.SetStatus(codes.Error, err.Error())
}
