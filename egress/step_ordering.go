package egress

import (
	"context"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/pause"
)

// orderingStep keeps a keyed event of an ordered subscription in place
// until it is settled, so that its key's later events stay behind it: a
// Retry waits out its delay, parked, holding its key but not its slot,
// and makes the next attempt; an attempt that did not count (the app is
// down) is made again, and waits for its turn below. An event without a
// key passes through.
func orderingStep(parked *parked) middleware {
	return func(next handler) handler {
		return func(ctx context.Context, it *item) result {
			for {
				r := next(ctx, it)
				switch {
				case it.key == "":
					return r
				case r.end == endPaused:
				case r.end == endOutcome && r.Kind == Retry:
					if !waitInPlace(parked, it, r.Delay) {
						return result{end: endStopped}
					}
					it.attempt++
				default:
					return r
				}
			}
		}
	}
}

// waitInPlace waits delay for it's next attempt, parked, without its slot;
// it reports false when it.stop ended the wait.
func waitInPlace(parked *parked, it *item, delay time.Duration) bool {
	parked.add(it)
	defer parked.remove(it)
	it.lease.release()
	if !pause.For(it.stop, delay) {
		return false
	}
	return it.lease.acquire(it.stop)
}
