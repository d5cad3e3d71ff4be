package egress

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/dedup"
)

// giveBack hands an event back to the broker at stop; its attempts are
// counted by the failures recorded (noteFailure), so a hand-back uses
// none up. An ordered subscription's events are held until every event is settled and the pin
// is released, and then handed back in stream order (handBack), so that
// the broker's redelivery queue is in stream order. Events of the
// subscription this dispatcher never fetched may still reach the next
// pinned puller before them: order across a hand-over is not guaranteed.
func (d *dispatcher) giveBack(msg jetstream.Msg) {
	if d.keys == nil {
		d.nak(msg, 0)
		return
	}
	d.pinMu.Lock()
	d.returned = append(d.returned, msg)
	d.pinMu.Unlock()
}

// seenTimeout bounds one failure lookup or record.
const seenTimeout = 2 * time.Second

// noteFailure records that it's attempt failed and counts, so that its
// next delivery, here or in another sidecar, makes the next attempt. When
// that fails, the next delivery makes this attempt again.
func (d *dispatcher) noteFailure(it *item) {
	ctx, cancel := context.WithTimeout(context.Background(), seenTimeout)
	defer cancel()
	if err := d.seen.NoteFailure(ctx, d.sub.Name, it.seq, it.attempt); err != nil {
		d.log.Warn("could not record a failed attempt; the next delivery makes it again", "id", it.ev.ID(), "error", err)
	}
}

// attempts is the attempt a delivery of an event makes: one more than its
// failed attempts recorded. Deliveries the broker made that reached no
// attempt (events handed back, held while the app was down, or lost with
// a pull request) count for nothing. The first delivery needs no lookup;
// when the lookup fails, every delivery counts as an attempt.
func (d *dispatcher) attempts(meta *jetstream.MsgMetadata) int {
	n := int(meta.NumDelivered)
	if n <= 1 {
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), seenTimeout)
	defer cancel()
	failed, err := d.seen.Failures(ctx, d.sub.Name, meta.Sequence.Stream)
	if err != nil {
		d.log.Warn("failure lookup failed; counting every delivery as an attempt", "error", err)
		return n
	}
	return min(failed+1, n)
}

// streamSeq is msg's stream sequence, 0 when unknown.
func streamSeq(msg jetstream.Msg) uint64 {
	meta, err := msg.Metadata()
	if err != nil {
		return 0
	}
	return meta.Sequence.Stream
}

// alreadyDelivered acknowledges an event the app already answered 2xx for
// within the duplicate window: one whose record is still pending in this
// sidecar (it waits for the record, kept alive, until ctx ends), or one
// the delivered set holds. A failing lookup delivers (at least once).
func (d *dispatcher) alreadyDelivered(ctx context.Context, it *item) bool {
	if recorded := d.s.answered.pending(it.ev); recorded != nil {
		d.park(it)
		select {
		case <-recorded:
		case <-ctx.Done():
		}
		d.unpark(it)
		d.duplicate(it)
		return true
	}
	seen, err := d.seen.Seen(ctx, d.sub.Name, it.ev.Source(), it.ev.ID())
	if err != nil {
		d.log.Warn("delivered-set lookup failed; delivering", "id", it.ev.ID(), "error", err)
		return false
	}
	if seen {
		d.duplicate(it)
	}
	return seen
}

func (d *dispatcher) duplicate(it *item) {
	d.m.deliveries.WithLabelValues(d.sub.Name, outcomeDuplicate).Inc()
	d.ack(it.msg)
}

// settle maps an outcome of an attempt that counts to the broker: Ack
// once the delivery is remembered, Nak with delay, or dead-letter then
// Term.
func (d *dispatcher) settle(ctx context.Context, it *item, o Outcome) {
	switch o.Kind {
	case Delivered:
		d.m.deliveries.WithLabelValues(d.sub.Name, o.Kind.String()).Inc()
		d.s.delivered.Add(1)
		d.remember(ctx, it)
	case Retry:
		d.noteRetry(ctx, it, o)
		d.noteFailure(it)
		d.nak(it.msg, o.Delay)
	case Dead:
		d.m.deliveries.WithLabelValues(d.sub.Name, o.Kind.String()).Inc()
		d.deadLetter(ctx, it, o)
	}
}

// retryLater hands back an event whose attempt did not count (the app is
// down), to come again when the next probe may start.
func (d *dispatcher) retryLater(it *item) {
	d.nak(it.msg, d.circuit.untilProbe())
}

// notePaused counts an attempt made while the app is down.
func (d *dispatcher) notePaused(ctx context.Context, it *item, o Outcome) {
	d.m.deliveries.WithLabelValues(d.sub.Name, outcomePaused).Inc()
	trace.SpanFromContext(ctx).AddEvent("app down", trace.WithAttributes(attrAttempt.Int(it.attempt),
		attribute.Int("http.response.status_code", o.Status), attribute.String("eventsidecar.reason", o.Reason)))
	d.log.DebugContext(ctx, "delivery attempt failed while the app is down; not counted", "id", it.ev.ID(),
		"source", it.ev.Source(), "attempt", it.attempt, "status", o.Status, "reason", o.Reason)
}

func (d *dispatcher) noteRetry(ctx context.Context, it *item, o Outcome) {
	d.m.deliveries.WithLabelValues(d.sub.Name, Retry.String()).Inc()
	d.s.retried.Add(1)
	trace.SpanFromContext(ctx).AddEvent("retry", trace.WithAttributes(attrAttempt.Int(it.attempt),
		attribute.Int("http.response.status_code", o.Status), attribute.String("eventsidecar.reason", o.Reason),
		attribute.String("eventsidecar.retry_in", o.Delay.String())))
	d.log.InfoContext(ctx, "delivery attempt failed; retrying", "id", it.ev.ID(), "source", it.ev.Source(),
		"attempt", it.attempt, "status", o.Status, "reason", o.Reason, "retry_in", o.Delay)
}

// deadLetter stores the event with its dlq* extensions on the dead-letter
// topic and only then terminates the original; if the dead letter cannot be
// stored, the original goes back to the broker and comes again later.
func (d *dispatcher) deadLetter(ctx context.Context, it *item, o Outcome) {
	attempts := min(it.attempt, d.sub.Retry.MaxAttempts)
	dl := DeadLetterEvent(it.ev, o, attempts, d.sub.Name, time.Now())
	m := broker.Message{Topic: d.sub.DeadLetter(), Event: dl, MsgID: deadLetterID(d.sub.Name, it.seq), Fingerprint: dedup.Fingerprint(dl)}
	m.TraceParent, m.TraceState = traceHeaders(ctx)
	if rc := d.b.Publish(context.WithoutCancel(ctx), []broker.Message{m})[0]; rc.Err != nil {
		delay := Backoff(it.attempt, d.sub.Retry, rand.Float64)
		d.log.ErrorContext(ctx, "dead letter not stored; the event goes back to the broker", "id", it.ev.ID(),
			"reason", o.Reason, "error", rc.Err, "retry_in", delay)
		d.nak(it.msg, delay)
		return
	}
	d.s.deadLettered.Add(1)
	d.m.deadLetters.WithLabelValues(d.sub.Name).Inc()
	trace.SpanFromContext(ctx).AddEvent("dead-lettered", trace.WithAttributes(
		attribute.String("eventsidecar.reason", o.Reason), attribute.Int("http.response.status_code", o.Status),
		attribute.Int("eventsidecar.attempts", attempts), semconv.MessagingDestinationName(d.sub.DeadLetter())))
	d.log.WarnContext(ctx, "event dead-lettered", "id", it.ev.ID(), "source", it.ev.Source(), "attempts", attempts,
		"status", o.Status, "reason", o.Reason, "topic", d.sub.DeadLetter())
	if err := it.msg.TermWithReason("dead-lettered: " + o.Reason); err != nil {
		d.log.Warn("terminating a dead-lettered event failed; its redelivery is dead-lettered once", "id", it.ev.ID(), "error", err)
	}
}

// deadLetterID is the dead letter's Nats-Msg-Id: one per original stored
// event, so a dead letter stored again after a crash is a duplicate.
func deadLetterID(subscription string, seq uint64) string {
	sum := sha256.Sum256([]byte("deadletter\x00" + subscription + "\x00" + strconv.FormatUint(seq, 10)))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (d *dispatcher) skip(msg jetstream.Msg) {
	d.m.deliveries.WithLabelValues(d.sub.Name, outcomeSkipped).Inc()
	d.ack(msg)
}

func (d *dispatcher) terminate(msg jetstream.Msg, reason string) {
	d.m.deliveries.WithLabelValues(d.sub.Name, outcomeInvalid).Inc()
	d.log.Error("not a deliverable event; dropped", "subject", msg.Subject(), "reason", reason)
	_ = msg.TermWithReason("eventsidecar: " + reason)
}

func (d *dispatcher) ack(msg jetstream.Msg) {
	if err := msg.Ack(); err != nil {
		d.log.Warn("acknowledging to the broker failed; the event may come again and is then suppressed", "error", err)
	}
}

func (d *dispatcher) nak(msg jetstream.Msg, delay time.Duration) {
	var err error
	if delay > 0 {
		err = msg.NakWithDelay(delay)
	} else {
		err = msg.Nak()
	}
	if err != nil {
		d.log.Warn("handing an event back to the broker failed; it comes again after the ack wait", "error", err)
	}
}
