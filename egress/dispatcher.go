package egress

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dedup"
	"github.com/eventsidecar/eventsidecar/internal/pause"
	"github.com/eventsidecar/eventsidecar/wire"
)

// item is one event being delivered.
type item struct {
	msg      jetstream.Msg
	ev       *event.Event
	seq      uint64 // stream sequence
	attempt  int    // the attempt about to be made; 1 for the first
	key      string // partitionkey when the subscription is ordered_by_key
	received time.Time
}

// dispatcher delivers one subscription's events in this sidecar through
// one deliverer: its webhook, or one of the app's streams.
type dispatcher struct {
	s              *subscription
	sub            config.Subscription // s.sub
	window         int                 // the most deliveries at once: max_in_flight, or a stream's window
	b              *broker.Client
	cons           jetstream.Consumer
	del            deliverer
	seen           *dedup.Delivered
	log            *slog.Logger
	m              *metrics
	slots          chan struct{} // one per delivery in progress, up to max_in_flight
	keys           *keyed        // nil unless ordered_by_key
	reservedPrefix string        // subjects of the sidecar's own topics ("_...")
	skipSubjects   [2]string     // never delivered: the own dead-letter subject; always delivered: the own replay subject
	circuit        *circuit      // the webhook's; nil for a stream
	watch          *watch

	parkedMu sync.Mutex
	parked   map[*item]struct{} // waiting in memory (behind their key, to retry, for their turn to probe, for their record): kept alive with InProgress

	pinMu    sync.Mutex
	pin      string          // the priority group pin of the last event fetched (ordered subscriptions)
	returned []jetstream.Msg // ordered subscriptions: events to hand back once stopped

	work sync.WaitGroup
}

// newDispatcher returns a dispatcher delivering s's events from cons (a
// handle on s's consumer) through del, at most window at once. A webhook's
// dispatcher guards it with a circuit, which s then shows.
func newDispatcher(s *subscription, cons jetstream.Consumer, window int, b *broker.Client, del deliverer,
	seen *dedup.Delivered, m *metrics, log *slog.Logger) *dispatcher {
	sub := s.sub
	d := &dispatcher{
		s: s, sub: sub, window: window, b: b, cons: cons, del: del, seen: seen, m: m,
		log:            log.With("subscription", sub.Name),
		slots:          make(chan struct{}, window),
		reservedPrefix: b.Subject("_"),
		skipSubjects:   [2]string{b.Subject(sub.DeadLetter()), b.Subject(ReplayTopic(sub.Name))},
		parked:         map[*item]struct{}{},
	}
	d.watch = newWatch(sub.Name, d.log)
	if sub.OrderedByKey {
		d.keys = newKeyed()
	}
	if _, ok := del.(*Webhook); ok {
		d.circuit = newCircuit(sub.Retry, d.log, m.circuitMetrics(sub.Name))
		s.circuit.Store(d.circuit)
	}
	return d
}

// run delivers until stop ends (consuming again while the broker cannot
// be reached). Then it stops fetching, hands the fetched but unstarted
// events back to the broker at once (Nak, so another sidecar takes them),
// lets deliveries in progress finish within grace, and cancels what is
// left, which goes back to the broker too.
func (d *dispatcher) run(stop context.Context, grace time.Duration) {
	it := d.consumeAgain(stop)
	if it == nil {
		return
	}
	d.s.running.add(d)
	defer d.s.running.remove(d)
	work, cancelWork := context.WithCancel(context.WithoutCancel(stop))
	defer cancelWork()
	go d.keepalive(work)
	d.fetch(stop, work, it)
	done := make(chan struct{})
	go func() { d.work.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		d.log.Warn("deliveries still in progress after the grace period; cancelling them", "grace", grace)
		cancelWork()
		<-done
	}
	d.unpin()
	d.handBack()
}

// lease is a delivery's hold on one of the subscription's slots.
type lease struct {
	slots chan struct{}
	held  bool
}

func (l *lease) release() {
	if l.held {
		<-l.slots
		l.held = false
	}
}

func (l *lease) acquire(ctx context.Context) bool {
	select {
	case l.slots <- struct{}{}:
		l.held = true
		return true
	case <-ctx.Done():
		return false
	}
}

// start settles one fetched event in its own goroutine; the event owns
// one slot, taken by fetch. An event of an ordered subscription joins its
// key's queue here, in the order fetched (the stream's), before any
// goroutine runs.
func (d *dispatcher) start(stop, work context.Context, msg jetstream.Msg) {
	l := &lease{slots: d.slots, held: true}
	received := time.Now()
	if d.keys == nil {
		d.spawn(l, func() {
			if it, ok := d.admit(msg, received); ok {
				d.process(stop, work, it, l)
			}
		})
		return
	}
	d.notePin(msg)
	it, ok := d.admit(msg, received)
	switch {
	case !ok:
		l.release()
	case it.key == "":
		d.spawn(l, func() { d.process(stop, work, it, l) })
	case !d.keys.admit(it.key, it):
		d.park(it)
		l.release()
	default:
		d.spawn(l, func() { d.runKey(stop, work, it, l) })
	}
}

// spawn runs fn as tracked work that releases l when done.
func (d *dispatcher) spawn(l *lease, fn func()) {
	d.work.Add(1)
	go func() {
		defer d.work.Done()
		defer l.release()
		fn()
	}()
}

// runKey delivers it and then every event queued behind its key, in order.
// At shutdown the events not yet started go back to the broker.
func (d *dispatcher) runKey(stop, work context.Context, it *item, l *lease) {
	key := it.key
	for ; it != nil; it = d.keys.next(key) {
		d.unpark(it)
		if stop.Err() != nil {
			d.s.inflight.release(it.seq)
			d.giveBack(it.msg)
			continue
		}
		d.process(stop, work, it, l)
	}
}

// admit decodes the event and settles at once what is not for this
// subscription; it reports whether the event is to be delivered.
func (d *dispatcher) admit(msg jetstream.Msg, received time.Time) (*item, bool) {
	meta, err := msg.Metadata()
	if err != nil {
		d.terminate(msg, "no JetStream metadata: "+err.Error())
		return nil, false
	}
	subject := msg.Subject()
	if subject == d.skipSubjects[0] || (strings.HasPrefix(subject, d.reservedPrefix) && subject != d.skipSubjects[1]) {
		d.skip(msg)
		return nil, false
	}
	ev, err := wire.DecodeNATS(msg.Headers(), msg.Data())
	if err != nil {
		d.terminate(msg, err.Error())
		return nil, false
	}
	if len(d.sub.Types) > 0 && !slices.Contains(d.sub.Types, ev.Type()) {
		d.skip(msg)
		return nil, false
	}
	if !d.s.inflight.claim(meta.Sequence.Stream) {
		d.copyInFlight(msg)
		return nil, false
	}
	it := &item{msg: msg, ev: &ev, seq: meta.Sequence.Stream, attempt: d.attempts(meta), received: received}
	if d.keys != nil {
		it.key = partitionKey(&ev)
	}
	return it, true
}

// copyInFlight drops a redelivered copy of an event this sidecar is
// delivering, unsettled: the first copy's settlement settles it.
func (d *dispatcher) copyInFlight(msg jetstream.Msg) {
	d.m.deliveries.WithLabelValues(d.sub.Name, outcomeDuplicate).Inc()
	d.log.Debug("a redelivered copy of an event being delivered here; dropped", "subject", msg.Subject())
}

func partitionKey(ev *event.Event) string {
	v, ok := ev.Extensions()["partitionkey"]
	if !ok {
		return ""
	}
	s, err := types.Format(v)
	if err != nil {
		return ""
	}
	return s
}

// process delivers it until it is settled: delivered, dead-lettered, or
// handed back to the broker to retry later. An event of an ordered key
// retries in place instead, holding its key but not a slot while it waits.
// An attempt that does not count (the app is down) hands the event back,
// or for an ordered key waits in place for its next turn.
func (d *dispatcher) process(stop, work context.Context, it *item, l *lease) {
	defer d.s.inflight.release(it.seq)
	ctx, span := startProcessSpan(work, d.sub.Name, it)
	defer span.End()
	if d.alreadyDelivered(ctx, it) {
		return
	}
	for {
		o, counts, ok := d.try(stop, ctx, it)
		switch {
		case !ok:
			// Stopped before an answer: handed back, not a failed attempt.
			d.giveBack(it.msg)
			return
		case !counts:
			d.notePaused(ctx, it, o)
			if it.key == "" {
				d.retryLater(it)
				return
			}
			continue
		case o.Kind != Retry || it.key == "":
			d.settle(ctx, it, o)
			return
		}
		d.noteRetry(ctx, it, o)
		d.noteFailure(it)
		if !d.waitInPlace(stop, it, o.Delay, l) {
			d.giveBack(it.msg)
			return
		}
		it.attempt++
	}
}

// try makes it's next attempt once the circuit lets it, waiting, kept
// alive, while the app is down and it is not its turn to probe. It
// returns the outcome, with the attempt limit applied when the attempt
// counts; ok is false when stop came first or the attempt was cancelled.
func (d *dispatcher) try(stop, ctx context.Context, it *item) (o Outcome, counts, ok bool) {
	if limit := d.sub.Retry.MaxAttempts; it.attempt > limit {
		return Outcome{Kind: Dead, Reason: "gave up after " + strconv.Itoa(limit) + " attempts"}, true, true
	}
	d.park(it)
	probe, ok := d.circuit.allow(stop)
	d.unpark(it)
	if !ok {
		return Outcome{}, false, false
	}
	o = d.attempt(ctx, it)
	counts = d.circuit.record(it.seq, o, probe)
	if o.Cause == CauseCancelled {
		return o, false, false
	}
	if counts {
		o = limitAttempts(o, it.attempt, d.sub.Retry)
	}
	return o, counts, true
}

func (d *dispatcher) attempt(ctx context.Context, it *item) Outcome {
	if time.Since(it.received) > ackWait(d.sub)/4 {
		_ = it.msg.InProgress()
	}
	d.s.inFlight.Add(1)
	d.m.inFlight.WithLabelValues(d.sub.Name).Inc()
	o := d.del.Attempt(ctx, Delivery{Event: it.ev, Attempt: it.attempt})
	d.m.inFlight.WithLabelValues(d.sub.Name).Dec()
	d.s.inFlight.Add(-1)
	d.m.latency.WithLabelValues(d.sub.Name).Observe(o.Took.Seconds())
	return o
}

// waitInPlace waits delay for an ordered event's next attempt, without a
// slot; it reports false when stop ended the wait.
func (d *dispatcher) waitInPlace(stop context.Context, it *item, delay time.Duration, l *lease) bool {
	d.park(it)
	defer d.unpark(it)
	l.release()
	if !pause.For(stop, delay) {
		return false
	}
	return l.acquire(stop)
}

func (d *dispatcher) park(it *item) {
	d.parkedMu.Lock()
	d.parked[it] = struct{}{}
	d.parkedMu.Unlock()
}

func (d *dispatcher) unpark(it *item) {
	d.parkedMu.Lock()
	delete(d.parked, it)
	d.parkedMu.Unlock()
}

// keepalive tells the broker, every third of the ack wait, that the events
// waiting in memory are still being worked on, until ctx ends.
func (d *dispatcher) keepalive(ctx context.Context) {
	t := time.NewTicker(ackWait(d.sub) / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.parkedMu.Lock()
		for it := range d.parked {
			_ = it.msg.InProgress()
		}
		d.parkedMu.Unlock()
	}
}
