package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/eventsidecar/eventsidecar/broker"
)

const (
	// feedBatch is the number of events per broker.Client.Publish call of
	// a feeder, and feedParallel the number of such calls at once: their
	// product stays well within the broker's default max_pending.
	feedBatch    = 256
	feedParallel = 4
	// feedCheck is how often a feeder topping up looks at the backlog.
	feedCheck = 5 * time.Millisecond
)

// Store stores n of the benchmark's events with data, JSON, through b, as
// the sidecar's ingress stores them, in pipelined batches: those with ids
// EventID(0, 0) to EventID(0, n-1). It fails when any is not stored or is
// a duplicate.
func Store(ctx context.Context, b *broker.Client, data []byte, n int) error {
	f := &feeder{b: b, data: data}
	return f.store(ctx, n)
}

// feeder stores the benchmark's events with data, those with ids
// EventID(0, 0), EventID(0, 1), ..., through the broker client, as the
// sidecar's ingress stores them, in pipelined batches. store and topUp are
// called from one goroutine; stored may be read from any.
type feeder struct {
	b      *broker.Client
	data   []byte
	next   uint64       // seq of the next event to store
	stored atomic.Int64 // events stored so far
}

// store stores n more events, feedParallel batches at a time; it fails
// when any event is not stored (or is a duplicate).
func (f *feeder) store(ctx context.Context, n int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(feedParallel)
	for n > 0 {
		size := min(n, feedBatch)
		from := f.next
		f.next += uint64(size)
		n -= size
		g.Go(func() error { return f.publish(gctx, from, size) })
	}
	return g.Wait()
}

func (f *feeder) publish(ctx context.Context, from uint64, size int) error {
	msgs := make([]broker.Message, size)
	for i := range msgs {
		msgs[i] = storedMessage(eventOf(EventID(0, from+uint64(i)), f.data))
	}
	for i, rc := range f.b.Publish(ctx, msgs) {
		switch {
		case rc.Err != nil:
			return fmt.Errorf("bench: store event %s: %w", msgs[i].Event.ID(), rc.Err)
		case rc.Duplicate:
			return fmt.Errorf("bench: store event %s: a duplicate", msgs[i].Event.ID())
		}
	}
	f.stored.Add(int64(size))
	return nil
}

// topUp keeps at least low events stored but not yet in a:
// whenever fewer are left it stores low more. It returns when ctx ends, or
// with the error of a failed store.
func (f *feeder) topUp(ctx context.Context, a *arrivals, low int) error {
	t := time.NewTicker(feedCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if f.stored.Load()-a.received() >= int64(low) {
			continue
		}
		if err := f.store(ctx, low); err != nil && ctx.Err() == nil {
			return err
		}
	}
}
