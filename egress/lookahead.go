package egress

import (
	"context"

	"github.com/eventsidecar/eventsidecar/dedup"
)

// lookahead is the delivered-set lookup of an event begun as soon as it is
// fetched, while it waits for a free slot, so that its answer is in when
// the delivery starts (dedupStep) instead of one more broker round trip
// away. Meanwhile it watches the event in answered: a record of a copy of
// the event that this sidecar makes after the lookup was sent (and so
// perhaps after it was read) makes the event a duplicate all the same.
type lookahead struct {
	lookup   *dedup.Lookup
	answered *answered
	watch    watched
}

// lookAhead begins the lookup of it in the delivered set.
func (d *dispatcher) lookAhead(it *item) *lookahead {
	la := &lookahead{answered: &d.s.answered}
	la.watch = la.answered.watch(it.ev)
	la.lookup = d.lookups.Look(d.sub.Name, it.ev.Source(), it.ev.ID())
	return la
}

// result waits, until ctx ends or for seenTimeout, for the lookup, and
// reports whether the app answered 2xx for the event: as the delivered
// set said, or since in this sidecar.
func (la *lookahead) result(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, seenTimeout)
	defer cancel()
	dup, err := la.lookup.Wait(ctx)
	if la.answered.recorded(la.watch) {
		return true, nil
	}
	return dup, err
}

// close ends the watch; la may be nil.
func (la *lookahead) close() {
	if la != nil {
		la.answered.unwatch(la.watch)
	}
}
