package egress

import (
	"context"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsidecar/eventsidecar/tracing"
)

var tracer = tracing.Tracer()

// The attributes of an attempt's HTTP client span.
const (
	attrAttempt = attribute.Key("eventsidecar.attempt")
	attrOutcome = attribute.Key("eventsidecar.outcome")
)

// traceHeaders is ctx's trace context as traceparent and tracestate.
func traceHeaders(ctx context.Context) (parent, state string) {
	c := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, c)
	return c["traceparent"], c["tracestate"]
}

// attemptTagger marks the HTTP client span of an attempt (made by the
// otelhttp transport around it) with the attempt number.
type attemptTagger struct{ next http.RoundTripper }

func (t attemptTagger) RoundTrip(r *http.Request) (*http.Response, error) {
	if n, err := strconv.Atoi(r.Header.Get(headerAttempt)); err == nil {
		trace.SpanFromContext(r.Context()).SetAttributes(attrAttempt.Int(n))
	}
	return t.next.RoundTrip(r)
}

// tagOutcome marks the HTTP client span of an answered attempt with its
// outcome; it must run before the answer's body is closed, which ends the
// span.
func tagOutcome(resp *http.Response, o Outcome) {
	trace.SpanFromContext(resp.Request.Context()).SetAttributes(attrOutcome.String(o.Kind.String()))
}
