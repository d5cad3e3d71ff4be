package egress

import (
	"context"
	"time"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/dedup"
)

// handler carries one event's delivery from one step of the chain on, and
// returns what it came to. ctx is the delivery's: it ends when the grace
// period of a stop runs out (it.stop ends at the stop itself).
type handler func(ctx context.Context, it *item) result

// middleware is one step of delivering an event: one concern wrapped
// around the rest of the chain (next). It may act before next, instead of
// it, after it, or call it again; it must not keep it beyond its call.
type middleware func(next handler) handler

// result is what delivering an event came to, handed back up the chain:
// the Outcome of its last attempt (zero when none was made), and how the
// event ends.
type result struct {
	Outcome
	end end
}

// end is how an event's delivery ends, when not by its Outcome alone.
type end int

const (
	// endOutcome: settled by the Outcome's Kind (see settleStep).
	endOutcome end = iota
	// endDuplicate: the app already answered 2xx for the event; it is
	// acknowledged without an attempt.
	endDuplicate
	// endPaused: the attempt did not count, the app being down; the
	// Outcome's Delay is the wait until the next probe may start.
	endPaused
	// endStopped: the dispatcher stopped before an answer; the event goes
	// back to the broker with none of its attempts used up.
	endStopped
	// endSkipped: the event is not for the app (no route of a Dapr
	// subscription matches it); it is acknowledged without an attempt.
	endSkipped
)

// chain composes steps around h, the first step outermost.
func chain(h handler, steps ...middleware) handler {
	for i := len(steps) - 1; i >= 0; i-- {
		h = steps[i](h)
	}
	return h
}

// delivery builds, once per dispatcher, the handler that delivers one
// event through del: the attempt wrapped in these steps, outermost first.
//
//  1. trace: the "process" span covers all below, settlement included.
//  2. settle: the final result to the broker (Ack once remembered, Nak
//     with delay, Term, hand back), after every step that decides it.
//  3. dead letter: stores a Dead event's dead letter before settle
//     terminates the original; one not stored becomes a Retry with backoff.
//  4. route (Dapr subscriptions only): once per event, the app's route by
//     the subscription's rules; an event no rule matches is skipped, or
//     dead-lettered when the subscription names a deadLetterTopic, and an
//     expired one dead-lettered, all without an attempt.
//  5. dedup: once per event, before any attempt: an event already
//     delivered ends as a duplicate, which settle acknowledges.
//  6. ordering (ordered_by_key only): a keyed event retries in place, so
//     the steps below it run once per attempt, those above once per event.
//  7. count: each attempt's result, as the limit and circuit made it.
//  8. limit: gives up after max_attempts and records each failure, of the
//     attempts that count, which only the circuit below knows.
//  9. circuit (webhooks and Dapr apps): waits for the turn while the
//     app is down; an attempt that fails then does not count.
//  10. measure: the in-flight gauge and latency of the attempt alone, not
//     of its wait for the turn.
//
// A new step goes below ordering when it acts on every attempt, above it
// when once per event; above settle only when it needs the settled event.
func (d *dispatcher) delivery(b *broker.Client, seen *dedup.Delivered, del deliverer, c *circuit) handler {
	steps := []middleware{
		traceStep(d.sub.Name),
		settleStep(d.sub.Name, seen, &d.s.answered, d.parked, d.giveBack, d.log),
		deadLetterStep(d.sub, b, d.tally, d.log),
	}
	if d.s.dapr != nil {
		steps = append(steps, routeStep(*d.s.dapr, d.tally, d.log))
	}
	steps = append(steps, dedupStep(d.sub.Name, seen, &d.s.answered, d.parked, d.tally, d.log))
	if d.keys != nil {
		steps = append(steps, orderingStep(d.parked))
	}
	steps = append(steps, countStep(d.tally), limitStep(d.sub, seen, d.log))
	if c != nil {
		steps = append(steps, circuitStep(c, d.parked, d.log))
	}
	steps = append(steps, measureStep(d.tally))
	return chain(attempt(del, ackWait(d.sub)), steps...)
}

// attempt is the handler at the end of the chain: one attempt through
// del. An event that has waited for a quarter of the ack wait since it
// was received is first said to be in progress, so the broker does not
// deliver it again meanwhile.
func attempt(del deliverer, ackWait time.Duration) handler {
	return func(ctx context.Context, it *item) result {
		if time.Since(it.received) > ackWait/4 {
			_ = it.msg.InProgress()
		}
		o := del.Attempt(ctx, Delivery{Event: it.ev, Attempt: it.attempt, Route: it.route})
		if o.Cause == CauseCancelled {
			return result{Outcome: o, end: endStopped}
		}
		return result{Outcome: o}
	}
}
