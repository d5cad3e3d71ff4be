package egress

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dedup"
	"github.com/eventsidecar/eventsidecar/wire"
)

// item is one event being delivered.
type item struct {
	msg      jetstream.Msg
	ev       *event.Event
	seq      uint64 // stream sequence
	attempt  int    // the attempt about to be made; 1 for the first (set by process)
	copies   int    // the deliveries the broker made of it, this one included
	key      string // partitionkey when the subscription is ordered_by_key
	route    string // a Dapr subscription's route for it (routeStep)
	received time.Time
	// stop ends when the dispatcher stops: a wait for the event's turn or
	// its retry in place gives up then, and the event goes back.
	stop  context.Context
	lease *lease     // the slot the event is delivered in
	ahead *lookahead // its delivered-set lookup, begun when fetched; nil: dedupStep makes it
}

// dispatcher delivers one subscription's events in this sidecar through
// one deliverer, its webhook or one of the app's streams: it fetches
// them, admits those to deliver, runs each through its delivery chain
// (see delivery), and hands back what is left when it stops.
type dispatcher struct {
	s              *subscription
	sub            config.Subscription // s.sub
	window         int                 // the most deliveries at once: max_in_flight, or a stream's window
	b              *broker.Client      // its connection while waiting for events; the stream, to unpin
	cons           jetstream.Consumer
	failures       failureLookup
	lookups        deliveredLookup
	log            *slog.Logger
	tally          tally         // its counts
	slots          chan struct{} // one per delivery in progress, up to window
	handover       chan *item    // an unordered event waiting for a slot, to the first delivery that ends
	keys           *keyed        // nil unless ordered_by_key
	reservedPrefix string        // subjects of the sidecar's own topics ("_...")
	skipSubjects   [2]string     // never delivered: the own dead-letter subject; always delivered: the own replay subject
	watch          *watch
	parked         *parked  // events waiting in memory, kept alive
	deliver        handler  // the delivery chain
	workers        *workers // run the deliveries, during run

	pinMu    sync.Mutex
	pin      string          // the priority group pin of the last event fetched (ordered subscriptions)
	returned []jetstream.Msg // ordered subscriptions: events to hand back once stopped

	work sync.WaitGroup
}

// failureLookup returns how many attempts at delivering the event at a
// stream sequence of a subscription failed (dedup.Delivered). It must be
// safe for concurrent use.
type failureLookup interface {
	Failures(ctx context.Context, subscription string, seq uint64) (int, error)
}

// newDispatcher returns a dispatcher delivering s's events from cons (a
// handle on s's consumer) through del, at most window at once, storing
// dead letters through b and recording deliveries in seen. The
// dispatcher of a pusher (a webhook, a Dapr app) guards it with a
// circuit, which s then shows.
func newDispatcher(s *subscription, cons jetstream.Consumer, window int, b *broker.Client, del deliverer,
	seen *dedup.Delivered, m *metrics, log *slog.Logger) *dispatcher {
	sub := s.sub
	d := &dispatcher{
		s: s, sub: sub, window: window, b: b, cons: cons, failures: seen, lookups: seen, tally: tally{m: m, s: s},
		log:            log.With("subscription", sub.Name),
		slots:          make(chan struct{}, window),
		handover:       make(chan *item),
		reservedPrefix: b.Subject("_"),
		skipSubjects:   [2]string{b.Subject(sub.DeadLetter()), b.Subject(ReplayTopic(sub.Name))},
		parked:         &parked{},
	}
	d.watch = newWatch(sub.Name, d.log)
	if sub.OrderedByKey {
		d.keys = newKeyed()
	}
	var c *circuit
	if _, ok := del.(pusher); ok {
		c = newCircuit(sub.Retry, d.log, m.circuitMetrics(sub.Name))
		s.circuit.Store(c)
	}
	d.deliver = d.delivery(b, seen, del, c)
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
	go d.parked.keepalive(work, ackWait(d.sub)/3)
	d.workers = newWorkers(d.window)
	d.fetch(stop, work, it)
	d.workers.close()
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

// dispatch delivers one fetched event on a worker once a slot is free;
// false when stop ended first (the event then went back). An event of an
// unordered subscription is admitted first (see place). One of an ordered
// subscription waits for the slot first, then joins its key's queue
// (start), in the order fetched (the stream's), before any worker runs it.
func (d *dispatcher) dispatch(stop, work context.Context, msg jetstream.Msg) bool {
	received := time.Now()
	if d.keys != nil {
		if !d.takeSlot(stop) {
			d.giveBack(msg)
			return false
		}
		d.start(stop, work, msg, received)
		return true
	}
	it, ok := d.admit(msg, received)
	if !ok {
		return true
	}
	if !d.place(stop, work, it) {
		d.putBack(it)
		return false
	}
	return true
}

// place delivers an admitted event of an unordered subscription in a
// free slot on a worker or, when none is free at once, begins its
// delivered-set lookup (lookAhead) and hands it to whichever comes first:
// a slot coming free, or a delivery that ends, which goes on with it in
// its own slot and on its own worker (deliverOn), so that the next event
// starts without a handoff to the fetch loop and back. It is false when
// stop ended first.
func (d *dispatcher) place(stop, work context.Context, it *item) bool {
	select {
	case d.slots <- struct{}{}:
	default:
		it.ahead = d.lookAhead(it)
		select {
		case d.slots <- struct{}{}:
		case d.handover <- it:
			return true
		case <-stop.Done():
			return false
		}
	}
	if stop.Err() != nil {
		<-d.slots
		return false
	}
	l := &lease{slots: d.slots, held: true}
	d.spawn(l, func() { d.deliverOn(stop, work, it, l) })
	return true
}

// deliverOn delivers it in the slot l holds and then, as long as place
// hands it one, the next event of the subscription. One handed over once
// stop ended goes back.
func (d *dispatcher) deliverOn(stop, work context.Context, it *item, l *lease) {
	for {
		d.process(stop, work, it, l)
		select {
		case it = <-d.handover:
		default:
			return
		}
		if stop.Err() != nil {
			d.putBack(it)
			return
		}
	}
}

// putBack hands back an admitted event that no delivery started.
func (d *dispatcher) putBack(it *item) {
	it.ahead.close()
	d.s.inflight.release(it.seq)
	d.giveBack(it.msg)
}

// takeSlot waits for a free slot; false, holding none, when stop has
// ended, even if a slot came free at the same time.
func (d *dispatcher) takeSlot(stop context.Context) bool {
	select {
	case d.slots <- struct{}{}:
	case <-stop.Done():
		return false
	}
	if stop.Err() != nil {
		<-d.slots
		return false
	}
	return true
}

// start delivers one fetched event of an ordered subscription, which owns
// the slot dispatch took: after the others of its key.
func (d *dispatcher) start(stop, work context.Context, msg jetstream.Msg, received time.Time) {
	l := &lease{slots: d.slots, held: true}
	d.notePin(msg)
	it, ok := d.admit(msg, received)
	switch {
	case !ok:
		l.release()
	case it.key == "":
		d.spawn(l, func() { d.process(stop, work, it, l) })
	case !d.keys.admit(it.key, it):
		d.parked.add(it)
		l.release()
	default:
		d.spawn(l, func() { d.runKey(stop, work, it, l) })
	}
}

// spawn runs fn on a worker as tracked work that releases l when done.
func (d *dispatcher) spawn(l *lease, fn func()) {
	d.work.Add(1)
	d.workers.run(func() {
		defer d.work.Done()
		defer l.release()
		fn()
	})
}

// runKey delivers it and then every event queued behind its key, in order.
// At shutdown the events not yet started go back to the broker.
func (d *dispatcher) runKey(stop, work context.Context, it *item, l *lease) {
	key := it.key
	for ; it != nil; it = d.keys.next(key) {
		d.parked.remove(it)
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
	it := &item{msg: msg, ev: &ev, seq: meta.Sequence.Stream, copies: int(meta.NumDelivered), received: received}
	if d.keys != nil {
		it.key = partitionKey(&ev)
	}
	return it, true
}

// copyInFlight drops a redelivered copy of an event this sidecar is
// delivering, unsettled: the first copy's settlement settles it.
func (d *dispatcher) copyInFlight(msg jetstream.Msg) {
	d.tally.outcome(outcomeDuplicate)
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

// process delivers it through the delivery chain, in the slot l holds,
// and then lets a copy of it be delivered again.
func (d *dispatcher) process(stop, work context.Context, it *item, l *lease) {
	defer d.s.inflight.release(it.seq)
	defer it.ahead.close()
	it.stop, it.lease, it.attempt = stop, l, d.attempts(it)
	d.deliver(work, it)
}

// attempts is the attempt a delivery of an event makes: one more than its
// failed attempts recorded. Deliveries the broker made that reached no
// attempt (events handed back, held while the app was down, or lost with
// a pull request) count for nothing. The first delivery needs no lookup;
// when the lookup fails, every delivery counts as an attempt.
func (d *dispatcher) attempts(it *item) int {
	n := it.copies
	if n <= 1 {
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), seenTimeout)
	defer cancel()
	failed, err := d.failures.Failures(ctx, d.sub.Name, it.seq)
	if err != nil {
		d.log.Warn("failure lookup failed; counting every delivery as an attempt", "error", err)
		return n
	}
	return min(failed+1, n)
}

// skip acknowledges an event that is not for this subscription.
func (d *dispatcher) skip(msg jetstream.Msg) {
	d.tally.outcome(outcomeSkipped)
	ack(msg, d.log)
}

// terminate drops an event that cannot be delivered.
func (d *dispatcher) terminate(msg jetstream.Msg, reason string) {
	d.tally.outcome(outcomeInvalid)
	d.log.Error("not a deliverable event; dropped", "subject", msg.Subject(), "reason", reason)
	_ = msg.TermWithReason("eventsidecar: " + reason)
}
