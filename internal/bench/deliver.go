package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/pause"
)

// tally is what a delivery throughput scenario saw in its measured window.
type tally struct {
	delivered int64         // distinct events the app received
	elapsed   time.Duration // the window's actual length
	attempts  Histogram     // attempt durations observed
	fed       int64         // events stored by topping up
	gap       time.Duration // the longest time without a delivery
	held      bool          // the window stayed open past its duration for a first delivery
	failed    int64         // retried, dead-lettered and duplicate deliveries, warm-up included
	firstErr  string        // describes the failures
}

// measureDelivery measures the deliveries of a backlog to a webhook at
// s.concurrency deliveries in flight, on a fresh node: the consumer is
// created, the backlog stored, then the deliveries start and, after the
// warm-up, the webhook counts them for the measured duration. The backlog
// is topped up should it run low.
func measureDelivery(ctx context.Context, o Options, s scenario) (res Result, err error) {
	n, err := openNode(ctx, o)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, n.Close()) }()
	backlog := o.backlog()
	r, err := startReceiver(backlog)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, r.Close()) }()
	d, err := newDeliverer(ctx, n, r.url, s.concurrency, o.log())
	if err != nil {
		return res, err
	}
	f := &feeder{b: n.broker, data: eventData}
	if err := f.store(ctx, backlog); err != nil {
		return res, err
	}
	t, err := deliverBacklog(ctx, o, d, f, r.arrivals, backlog)
	if err != nil {
		return res, err
	}
	return t.result(s), nil
}

// result is s's Result from what it saw.
func (t tally) result(s scenario) Result {
	return Result{
		Key: s.key, Name: s.name, Versus: s.versus, Concurrency: s.concurrency, EventsPerRequest: 1, Delivery: true,
		Requests: t.delivered, Events: t.delivered, Elapsed: t.elapsed, EventsPerSec: float64(t.delivered) / t.elapsed.Seconds(),
		P50: t.attempts.Quantile(0.50), P99: t.attempts.Quantile(0.99),
		Failed: t.failed, FirstError: t.firstErr, Note: t.note(),
	}
}

const (
	// deliveryStall is how long a delivery scenario waits for the next
	// delivery before it gives up: longer than the 30s a stalled pull
	// takes to recover (see the heartbeat of jetstream's Messages).
	deliveryStall = time.Minute
	// deliveryPoll is how often a measured window held open for its
	// first delivery looks for it.
	deliveryPoll = 5 * time.Millisecond
)

// stallNote is the shortest time without a delivery that a scenario's
// note mentions: far longer than any pause of a healthy run.
const stallNote = 250 * time.Millisecond

// note says what qualifies t's figures: the backlog topped up, the window
// held open for a first delivery, deliveries stalled.
func (t tally) note() string {
	var notes []string
	if t.fed > 0 {
		notes = append(notes, fmt.Sprintf("the backlog ran low: %d more events were stored while measuring", t.fed))
	}
	if t.held {
		notes = append(notes, fmt.Sprintf("no delivery was measured within the measured duration: "+
			"the window stayed open until one was, %s in all", t.elapsed.Round(time.Millisecond)))
	}
	if t.gap >= stallNote {
		notes = append(notes, fmt.Sprintf("deliveries stalled for up to %s with events waiting", t.gap.Round(time.Millisecond)))
	}
	return strings.Join(notes, "; ")
}

// deliverBacklog runs d, with f topping the backlog up, for the warm-up
// and the measured duration while the app counts the deliveries in a, then
// stops both and counts the deliveries that were retried, dead-lettered or
// duplicated.
func deliverBacklog(ctx context.Context, o Options, d *deliverer, f *feeder, a *arrivals, backlog int) (tally, error) {
	feedCtx, stopFeed := context.WithCancel(ctx)
	fed := make(chan error, 1)
	d.start(ctx)
	go func() { fed <- f.topUp(feedCtx, a, max(backlog/2, 1)) }()
	t, err := countDeliveries(ctx, o, d, f, a)
	stopFeed()
	err = errors.Join(err, <-fed)
	st, serr := d.stop(ctx)
	t.failed, t.firstErr = failures(st, a)
	return t, errors.Join(err, serr)
}

// countDeliveries waits out the warm-up, then counts the deliveries in a
// and the attempt durations over the measured duration, and on past it
// until it has counted one (see awaitDelivery).
func countDeliveries(ctx context.Context, o Options, d *deliverer, f *feeder, a *arrivals) (tally, error) {
	if !pause.For(ctx, o.Warmup) {
		return tally{}, ctx.Err()
	}
	s0, err := takeSnapshot(d, f, a)
	a.resetGap()
	if err != nil {
		return tally{}, err
	}
	if !pause.For(ctx, o.Duration) {
		return tally{}, ctx.Err()
	}
	s1, held, err := awaitDelivery(ctx, d, f, a, s0)
	if err != nil {
		return tally{}, err
	}
	return tally{
		delivered: s1.received - s0.received, elapsed: s1.at.Sub(s0.at), attempts: s1.attempts.Since(s0.attempts),
		fed: s1.fed - s0.fed, gap: a.longestGap(), held: held,
	}, nil
}

// snapshot is what a delivery throughput scenario had seen at a moment.
type snapshot struct {
	at       time.Time
	attempts Histogram // attempt durations observed
	received int64     // distinct events the app received
	fed      int64     // events the feeder stored
}

// takeSnapshot reads d's attempt durations, then the counts of a and f.
func takeSnapshot(d *deliverer, f *feeder, a *arrivals) (snapshot, error) {
	h, err := d.attempts()
	return snapshot{at: time.Now(), attempts: h, received: a.received(), fed: f.stored.Load()}, err
}

// measures reports whether s saw a delivery received and an attempt
// observed after earlier.
func (s snapshot) measures(earlier snapshot) bool {
	return s.received > earlier.received && s.attempts.total > earlier.attempts.total
}

// awaitDelivery takes the snapshot that closes the measured window s0
// opened: now if a delivery has been measured since s0; else as soon as
// one has, polling every deliveryPoll, or after deliveryStall with none.
// held reports whether the window stayed open past its duration.
func awaitDelivery(ctx context.Context, d *deliverer, f *feeder, a *arrivals, s0 snapshot) (s1 snapshot, held bool, err error) {
	deadline := time.Now().Add(deliveryStall)
	for {
		s1, err = takeSnapshot(d, f, a)
		if err != nil || s1.measures(s0) || !s1.at.Before(deadline) {
			return s1, held, err
		}
		held = true
		if !pause.For(ctx, deliveryPoll) {
			return s1, held, ctx.Err()
		}
	}
}
