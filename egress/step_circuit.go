package egress

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// circuitStep makes each attempt once c lets it: while the app is down an
// event waits, parked, for its turn to probe, and ends stopped when
// it.stop comes first. c then takes the attempt's outcome; a failure that
// does not count (the app is down) ends the attempt as paused, to come
// again when the next probe may start.
func circuitStep(c *circuit, parked *parked, log *slog.Logger) middleware {
	return func(next handler) handler {
		return func(ctx context.Context, it *item) result {
			parked.add(it)
			probe, ok := c.allow(it.stop)
			parked.remove(it)
			if !ok {
				return result{end: endStopped}
			}
			r := next(ctx, it)
			if counts := c.record(it.seq, r.Outcome, probe); counts || r.end == endStopped {
				return r
			}
			notePaused(ctx, it, r.Outcome, log)
			r.end, r.Delay = endPaused, c.untilProbe()
			return r
		}
	}
}

// notePaused marks an attempt made while the app is down on the process
// span, and logs it.
func notePaused(ctx context.Context, it *item, o Outcome, log *slog.Logger) {
	trace.SpanFromContext(ctx).AddEvent("app down", trace.WithAttributes(attrAttempt.Int(it.attempt),
		attribute.Int("http.response.status_code", o.Status), attribute.String("eventsidecar.reason", o.Reason)))
	log.DebugContext(ctx, "delivery attempt failed while the app is down; not counted", "id", it.ev.ID(),
		"source", it.ev.Source(), "attempt", it.attempt, "status", o.Status, "reason", o.Reason)
}
