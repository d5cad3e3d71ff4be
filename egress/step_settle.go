package egress

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// settlement settles one subscription's events with the broker. Safe for
// concurrent use.
type settlement struct {
	name     string
	marks    deliveredRecorder
	answered *answered
	parked   *parked
	giveBack func(jetstream.Msg) // hands an event back at stop
	log      *slog.Logger
}

// settleStep settles each event by what the rest of its delivery came to:
// the delivery of the subscription name is remembered in marks and then
// acknowledged; a duplicate, or an event skipped, is acknowledged; a
// Retry, or an attempt that did not count, goes back to the broker after
// its Delay; a Dead event (its dead letter stored by then) is terminated;
// a stopped one goes to giveBack. An Outcome of no Kind is left to the broker, which delivers
// it again after the ack wait.
func settleStep(name string, marks deliveredRecorder, answered *answered, parked *parked,
	giveBack func(jetstream.Msg), log *slog.Logger) middleware {
	st := &settlement{name: name, marks: marks, answered: answered, parked: parked, giveBack: giveBack, log: log}
	return func(next handler) handler {
		return func(ctx context.Context, it *item) result {
			r := next(ctx, it)
			st.settle(ctx, it, r)
			return r
		}
	}
}

func (st *settlement) settle(ctx context.Context, it *item, r result) {
	switch {
	case r.end == endDuplicate, r.end == endSkipped:
		ack(it.msg, st.log)
	case r.end == endStopped:
		st.giveBack(it.msg)
	case r.end == endPaused, r.Kind == Retry:
		nak(it.msg, r.Delay, st.log)
	case r.Kind == Delivered:
		st.remember(ctx, it)
	case r.Kind == Dead:
		if err := it.msg.TermWithReason("dead-lettered: " + r.Reason); err != nil {
			st.log.Warn("terminating a dead-lettered event failed; its redelivery is dead-lettered once", "id", it.ev.ID(), "error", err)
		}
	}
}

// ack acknowledges msg to the broker.
func ack(msg jetstream.Msg, log *slog.Logger) {
	if err := msg.Ack(); err != nil {
		log.Warn("acknowledging to the broker failed; the event may come again and is then suppressed", "error", err)
	}
}

// nak hands msg back to the broker, to be delivered again after delay.
func nak(msg jetstream.Msg, delay time.Duration, log *slog.Logger) {
	var err error
	if delay > 0 {
		err = msg.NakWithDelay(delay)
	} else {
		err = msg.Nak()
	}
	if err != nil {
		log.Warn("handing an event back to the broker failed; it comes again after the ack wait", "error", err)
	}
}
