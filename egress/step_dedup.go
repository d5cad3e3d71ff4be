package egress

import (
	"context"
	"log/slog"

	"github.com/eventsidecar/eventsidecar/dedup"
)

// deliveredLookup begins to find out whether the app answered 2xx for an
// event of a subscription within the duplicate window (dedup.Delivered).
// It must be safe for concurrent use.
type deliveredLookup interface {
	Look(subscription, source, id string) *dedup.Lookup
}

// dedupStep ends as a duplicate, without an attempt, an event of the
// subscription name that the app already answered 2xx for within the
// duplicate window: one whose record is still pending in this sidecar
// (answered; it waits, parked, for the record, until ctx ends), or one
// seen holds (the event's lookahead, when it has one). A failing lookup
// delivers (at least once).
func dedupStep(name string, seen deliveredLookup, answered *answered, parked *parked, t tally, log *slog.Logger) middleware {
	return func(next handler) handler {
		return func(ctx context.Context, it *item) result {
			if recorded := answered.pending(it.ev); recorded != nil {
				parked.add(it)
				select {
				case <-recorded:
				case <-ctx.Done():
				}
				parked.remove(it)
				t.outcome(outcomeDuplicate)
				return result{end: endDuplicate}
			}
			switch dup, err := lookUp(ctx, seen, name, it); {
			case err != nil:
				log.Warn("delivered-set lookup failed; delivering", "id", it.ev.ID(), "error", err)
			case dup:
				t.outcome(outcomeDuplicate)
				return result{end: endDuplicate}
			}
			return next(ctx, it)
		}
	}
}

// lookUp is the answer of the lookahead of it, or else of a lookup now.
func lookUp(ctx context.Context, seen deliveredLookup, name string, it *item) (bool, error) {
	if it.ahead != nil {
		return it.ahead.result(ctx)
	}
	return seen.Look(name, it.ev.Source(), it.ev.ID()).Wait(ctx)
}
