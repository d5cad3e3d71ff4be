package egress

import (
	"context"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventsidecar/eventsidecar/internal/pause"
)

// seenTimeout bounds one lookup or record in the delivered set.
const seenTimeout = 2 * time.Second

// Bounds of the backoff between attempts to record a delivery in the
// delivered set.
const (
	recordRetryMin = 100 * time.Millisecond
	recordRetryMax = 2 * time.Second
)

// remember records in the delivered set that the app answered 2xx for it,
// and then acknowledges it to the broker. While the record fails (the
// broker is down, say) the event is kept, alive with InProgress, and the
// record retried with backoff until it succeeds or ctx ends (the grace
// period of a stop ran out): acknowledging first would let a redelivery
// reach the app again once the broker is back. Meanwhile a redelivery, or
// another stored copy, of the event waits for the record (answered). When
// ctx ends first the event is acknowledged anyway: if that reaches the
// broker, nothing comes again.
func (st *settlement) remember(ctx context.Context, it *item) {
	defer st.answered.add(it.ev)()
	if err := st.mark(ctx, it); err != nil {
		st.log.Warn("could not remember a delivery; keeping the event and trying again before acknowledging it",
			"id", it.ev.ID(), "source", it.ev.Source(), "error", err)
		st.parked.add(it)
		err = st.retryMark(ctx, it)
		st.parked.remove(it)
		if err != nil {
			st.log.Error("stopped before a delivery was remembered; should the broker deliver it again, so will the sidecar",
				"id", it.ev.ID(), "source", it.ev.Source(), "error", err)
		} else {
			st.log.Info("delivery remembered", "id", it.ev.ID(), "source", it.ev.Source())
		}
	}
	ack(it.msg, st.log)
}

// retryMark tries to record it with backoff until that succeeds, or ctx
// ends: it then returns the last error.
func (st *settlement) retryMark(ctx context.Context, it *item) error {
	var err error
	for wait := recordRetryMin; pause.For(ctx, wait); wait = min(2*wait, recordRetryMax) {
		if err = st.mark(ctx, it); err == nil {
			return nil
		}
	}
	return err
}

// deliveredRecorder records that the app answered 2xx for an event of a
// subscription (dedup.Delivered). It must be safe for concurrent use.
type deliveredRecorder interface {
	Mark(ctx context.Context, subscription, source, id string) error
}

// mark records it once.
func (st *settlement) mark(ctx context.Context, it *item) error {
	ctx, cancel := context.WithTimeout(ctx, seenTimeout)
	defer cancel()
	return st.marks.Mark(ctx, st.name, it.ev.Source(), it.ev.ID())
}

// answered holds the events of a subscription that the app answered 2xx
// for in this sidecar while their record in the delivered set is pending,
// and, for the lookups begun ahead of a delivery (lookahead), whether one
// went through since. The zero value is empty; safe for concurrent use.
type answered struct {
	mu      sync.Mutex
	records map[answerKey]*record
}

// answerKey names an event as the delivered set does (with the
// subscription).
type answerKey struct{ source, id string }

// record is an event's entry: its pending record, if any, and the
// lookaheads watching it.
type record struct {
	n        int           // deliveries of the event recording it
	done     chan struct{} // closed when the last of them is through
	watchers int           // lookaheads of a copy of the event
	recorded bool          // a record went through while watched
}

// entry returns k's record, new when there is none; a.mu is held.
func (a *answered) entry(k answerKey) *record {
	if a.records == nil {
		a.records = map[answerKey]*record{}
	}
	r := a.records[k]
	if r == nil {
		r = &record{}
		a.records[k] = r
	}
	return r
}

// drop forgets k's record once nothing is pending or watching; a.mu is
// held.
func (a *answered) drop(k answerKey, r *record) {
	if r.n == 0 && r.watchers == 0 {
		delete(a.records, k)
	}
}

// add notes that ev's record is pending and returns the func that notes
// it through, recorded or not.
func (a *answered) add(ev *event.Event) func() {
	k := answerKey{ev.Source(), ev.ID()}
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.entry(k)
	if r.n == 0 {
		r.done = make(chan struct{})
	}
	r.n++
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if r.n--; r.n == 0 {
			close(r.done)
			r.recorded = true
			a.drop(k, r)
		}
	}
}

// pending returns a channel closed when ev's pending record is through,
// or nil when none is pending.
func (a *answered) pending(ev *event.Event) <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r := a.records[answerKey{ev.Source(), ev.ID()}]; r != nil && r.n > 0 {
		return r.done
	}
	return nil
}

// watched is a lookahead's hold on an event's record.
type watched struct {
	k answerKey
	r *record
}

// watch starts noting whether a record of ev goes through, until unwatch.
func (a *answered) watch(ev *event.Event) watched {
	k := answerKey{ev.Source(), ev.ID()}
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.entry(k)
	r.watchers++
	return watched{k: k, r: r}
}

// recorded reports whether a record of w's event went through since
// watch.
func (a *answered) recorded(w watched) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return w.r.recorded
}

// unwatch ends w.
func (a *answered) unwatch(w watched) {
	a.mu.Lock()
	defer a.mu.Unlock()
	w.r.watchers--
	a.drop(w.k, w.r)
}
