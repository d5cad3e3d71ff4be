package egress

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dedup"
)

// publisher stores messages on the broker (broker.Client), one receipt per
// message. It must be safe for concurrent use.
type publisher interface {
	Publish(ctx context.Context, msgs []broker.Message) []broker.Receipt
}

// deadLetterStep stores the dead letter of each event that ends Dead,
// with its dlq* extensions, on sub's dead-letter topic through pub, before
// settlement terminates the original. A dead letter that cannot be stored
// makes the event a Retry after a backoff: it comes again later, and is
// never acknowledged without its dead letter.
func deadLetterStep(sub config.Subscription, pub publisher, t tally, log *slog.Logger) middleware {
	return func(next handler) handler {
		return func(ctx context.Context, it *item) result {
			r := next(ctx, it)
			if r.end != endOutcome || r.Kind != Dead {
				return r
			}
			attempts := min(it.attempt, sub.Retry.MaxAttempts)
			if err := storeDeadLetter(ctx, sub, pub, it, r.Outcome, attempts); err != nil {
				delay := Backoff(it.attempt, sub.Retry, rand.Float64)
				log.ErrorContext(ctx, "dead letter not stored; the event goes back to the broker", "id", it.ev.ID(),
					"reason", r.Reason, "error", err, "retry_in", delay)
				return result{Outcome: Outcome{Kind: Retry, Delay: delay, Reason: "dead letter not stored: " + r.Reason}}
			}
			t.deadLettered()
			trace.SpanFromContext(ctx).AddEvent("dead-lettered", trace.WithAttributes(
				attribute.String("eventsidecar.reason", r.Reason), attribute.Int("http.response.status_code", r.Status),
				attribute.Int("eventsidecar.attempts", attempts), semconv.MessagingDestinationName(sub.DeadLetter())))
			log.WarnContext(ctx, "event dead-lettered", "id", it.ev.ID(), "source", it.ev.Source(), "attempts", attempts,
				"status", r.Status, "reason", r.Reason, "topic", sub.DeadLetter())
			return r
		}
	}
}

// storeDeadLetter publishes the dead letter of it after attempts, the
// last with outcome o.
func storeDeadLetter(ctx context.Context, sub config.Subscription, pub publisher, it *item, o Outcome, attempts int) error {
	dl := DeadLetterEvent(it.ev, o, attempts, sub.Name, time.Now())
	m := broker.Message{Topic: sub.DeadLetter(), Event: dl, MsgID: deadLetterID(sub.Name, it.seq), Fingerprint: dedup.Fingerprint(dl)}
	m.TraceParent, m.TraceState = traceHeaders(ctx)
	return pub.Publish(context.WithoutCancel(ctx), []broker.Message{m})[0].Err
}

// deadLetterID is the dead letter's Nats-Msg-Id: one per original stored
// event, so a dead letter stored again after a crash is a duplicate.
func deadLetterID(subscription string, seq uint64) string {
	sum := sha256.Sum256([]byte("deadletter\x00" + subscription + "\x00" + strconv.FormatUint(seq, 10)))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
