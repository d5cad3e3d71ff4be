package egress

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsidecar/eventsidecar/config"
)

// failureRecorder records how many attempts at delivering the event at a
// stream sequence of a subscription failed (dedup.Delivered). It must be
// safe for concurrent use.
type failureRecorder interface {
	NoteFailure(ctx context.Context, subscription string, seq uint64, n int) error
}

// limitStep applies the last row of the table of contract §5 to the
// attempts that count (those the steps below did not end as paused or
// stopped): an event past sub's max_attempts is Dead without another
// attempt, and a Retry at the last attempt becomes Dead (limitAttempts).
// Each Retry left is recorded in failures, so that the event's next
// delivery, here or in another sidecar, makes the next attempt.
func limitStep(sub config.Subscription, failures failureRecorder, log *slog.Logger) middleware {
	return func(next handler) handler {
		return func(ctx context.Context, it *item) result {
			if limit := sub.Retry.MaxAttempts; it.attempt > limit {
				return result{Outcome: Outcome{Kind: Dead, Reason: "gave up after " + strconv.Itoa(limit) + " attempts"}}
			}
			r := next(ctx, it)
			if r.end != endOutcome {
				return r
			}
			r.Outcome = limitAttempts(r.Outcome, it.attempt, sub.Retry)
			if r.Kind == Retry {
				noteRetry(ctx, it, r.Outcome, log)
				noteFailure(sub.Name, failures, it, log)
			}
			return r
		}
	}
}

// limitAttempts is the last row of the table of contract §5: a Retry when
// attempt >= r.MaxAttempts becomes Dead with the reason "gave up after N
// attempts: <reason>".
func limitAttempts(o Outcome, attempt int, r config.Retry) Outcome {
	if o.Kind == Retry && attempt >= r.MaxAttempts {
		o.Kind, o.Delay = Dead, 0
		o.Reason = fmt.Sprintf("gave up after %d attempts: %s", attempt, o.Reason)
	}
	return o
}

// noteRetry marks a failed attempt that counts on the process span, and
// logs it.
func noteRetry(ctx context.Context, it *item, o Outcome, log *slog.Logger) {
	trace.SpanFromContext(ctx).AddEvent("retry", trace.WithAttributes(attrAttempt.Int(it.attempt),
		attribute.Int("http.response.status_code", o.Status), attribute.String("eventsidecar.reason", o.Reason),
		attribute.String("eventsidecar.retry_in", o.Delay.String())))
	log.InfoContext(ctx, "delivery attempt failed; retrying", "id", it.ev.ID(), "source", it.ev.Source(),
		"attempt", it.attempt, "status", o.Status, "reason", o.Reason, "retry_in", o.Delay)
}

// noteFailure records that it's attempt failed and counts. When that
// fails, the next delivery makes this attempt again.
func noteFailure(subscription string, failures failureRecorder, it *item, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), seenTimeout)
	defer cancel()
	if err := failures.NoteFailure(ctx, subscription, it.seq, it.attempt); err != nil {
		log.Warn("could not record a failed attempt; the next delivery makes it again", "id", it.ev.ID(), "error", err)
	}
}
