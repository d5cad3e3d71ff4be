package egress

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dedup"
)

const (
	// fetchErrorPause is the pause after the consumer fails to hand out a
	// message.
	fetchErrorPause = time.Second
	// nextWait bounds one wait for the next message. nats.go's pull
	// iterator can miss re-issuing its pull request when a batch arrives
	// before it has noted the previous one done, and then waits for its
	// heartbeat check (30s) with events pending; each new wait makes it
	// check again.
	nextWait = 100 * time.Millisecond
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
	sub            config.Subscription // s.sub, with this dispatcher's max_in_flight
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

	parkedMu sync.Mutex
	parked   map[*item]struct{} // waiting in memory (behind their key, or to retry): kept alive with InProgress

	pinMu    sync.Mutex
	pin      string          // the priority group pin of the last event fetched (ordered subscriptions)
	returned []jetstream.Msg // ordered subscriptions: events to hand back once stopped

	work sync.WaitGroup
}

// newDispatcher returns a dispatcher delivering s's events from cons (a
// handle on s's consumer) through del, at most window at once.
func newDispatcher(s *subscription, cons jetstream.Consumer, window int, b *broker.Client, del deliverer,
	seen *dedup.Delivered, m *metrics, log *slog.Logger) *dispatcher {
	sub := s.sub
	sub.MaxInFlight = window
	d := &dispatcher{
		s: s, sub: sub, b: b, cons: cons, del: del, seen: seen, m: m,
		log:            log.With("subscription", sub.Name),
		slots:          make(chan struct{}, window),
		reservedPrefix: b.Subject("_"),
		skipSubjects:   [2]string{b.Subject(sub.DeadLetter()), b.Subject(ReplayTopic(sub.Name))},
		parked:         map[*item]struct{}{},
	}
	if sub.OrderedByKey {
		d.keys = newKeyed()
	}
	return d
}

// run delivers until stop ends. Then it stops fetching, hands the fetched
// but unstarted events back to the broker at once (Nak, so another sidecar
// takes them), lets deliveries in progress finish within grace, and cancels
// what is left, which goes back to the broker too.
func (d *dispatcher) run(stop context.Context, grace time.Duration) error {
	it, err := d.cons.Messages(pullOptions(d.sub)...)
	if err != nil {
		return fmt.Errorf("egress: subscription %q: consume: %w", d.sub.Name, err)
	}
	work, cancelWork := context.WithCancel(context.WithoutCancel(stop))
	defer cancelWork()
	go d.keepalive(work)
	go func() {
		<-stop.Done()
		it.Drain()
	}()
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
	return nil
}

// giveBack hands an event back to the broker at stop. Unless attempted
// (this delivery made an attempt), the hand-back is recorded first
// (dedup.Delivered.NoteHandBack), so that the broker's count of its
// deliveries does not count it as an attempt (admit). An ordered
// subscription's events are held until every event is settled and the pin
// is released, and then handed back in stream order (handBack), so that
// the broker's redelivery queue is in stream order. Events of the
// subscription this dispatcher never fetched may still reach the next
// pinned puller before them: order across a hand-over is not guaranteed.
func (d *dispatcher) giveBack(msg jetstream.Msg, attempted bool) {
	if !attempted {
		d.noteHandBack(msg)
	}
	if d.keys == nil {
		d.nak(msg, 0)
		return
	}
	d.pinMu.Lock()
	d.returned = append(d.returned, msg)
	d.pinMu.Unlock()
}

// seenTimeout bounds one hand-back lookup or record.
const seenTimeout = 2 * time.Second

// noteHandBack records that msg goes back unattempted; when that fails the
// next delivery counts one attempt more.
func (d *dispatcher) noteHandBack(msg jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), seenTimeout)
	defer cancel()
	if err := d.seen.NoteHandBack(ctx, d.sub.Name, streamSeq(msg)); err != nil {
		d.log.Warn("could not record an event handed back; its next delivery counts one attempt more", "error", err)
	}
}

// attempts is the attempt a delivery of an event makes: the broker's
// count of its deliveries, less those handed back unattempted.
func (d *dispatcher) attempts(meta *jetstream.MsgMetadata) int {
	n := int(meta.NumDelivered)
	if n <= 1 {
		return max(n, 1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), seenTimeout)
	defer cancel()
	back, err := d.seen.HandedBack(ctx, d.sub.Name, meta.Sequence.Stream)
	if err != nil {
		d.log.Warn("hand-back lookup failed; counting every delivery as an attempt", "error", err)
		return n
	}
	return max(n-back, 1)
}

// handBack hands back the events giveBack held, in stream order.
func (d *dispatcher) handBack() {
	d.pinMu.Lock()
	returned := d.returned
	d.returned = nil
	d.pinMu.Unlock()
	slices.SortFunc(returned, func(a, b jetstream.Msg) int { return cmp.Compare(streamSeq(a), streamSeq(b)) })
	for _, msg := range returned {
		d.nak(msg, 0)
	}
}

// streamSeq is msg's stream sequence, 0 when unknown.
func streamSeq(msg jetstream.Msg) uint64 {
	meta, err := msg.Metadata()
	if err != nil {
		return 0
	}
	return meta.Sequence.Stream
}

// unpinTimeout bounds the broker calls of unpin.
const unpinTimeout = 2 * time.Second

// unpin hands an ordered subscription on at once when this dispatcher,
// now stopped with its events settled or held for handBack, is the pinned
// one; otherwise the broker would wait for the pin's TTL (the ack wait)
// before another sidecar or stream gets the events.
func (d *dispatcher) unpin() {
	d.pinMu.Lock()
	pin := d.pin
	d.pinMu.Unlock()
	if pin == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), unpinTimeout)
	defer cancel()
	info, err := d.cons.Info(ctx)
	if err != nil {
		return
	}
	for _, g := range info.PriorityGroups {
		if g.Group != orderedGroup || g.PinnedClientID != pin {
			continue
		}
		stream, err := d.b.JetStream().Stream(ctx, d.b.Stream())
		if err == nil {
			err = stream.UnpinConsumer(ctx, d.sub.Name, orderedGroup)
		}
		if err != nil {
			d.log.Warn("could not hand the ordered subscription on; another takes it after the ack wait", "error", err)
		}
	}
}

// notePin remembers the priority group pin msg was delivered under.
func (d *dispatcher) notePin(msg jetstream.Msg) {
	if id := msg.Headers().Get(pinHeader); id != "" {
		d.pinMu.Lock()
		d.pin = id
		d.pinMu.Unlock()
	}
}

// pinHeader carries the pin of a message pulled in a pinned priority group.
const pinHeader = "Nats-Pin-Id"

// fetch takes events from the consumer while a slot is free, and starts a
// delivery for each, until the iterator is drained after stop.
func (d *dispatcher) fetch(stop, work context.Context, it jetstream.MessagesContext) {
	for {
		select {
		case d.slots <- struct{}{}:
		case <-stop.Done():
			d.nakRest(it)
			return
		}
		msg, err := it.Next(jetstream.NextMaxWait(nextWait))
		switch {
		case errors.Is(err, nats.ErrTimeout):
			<-d.slots
			continue
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			<-d.slots
			return
		case err != nil:
			<-d.slots
			d.log.Warn("fetching events failed", "error", err)
			pause(stop, fetchErrorPause)
			continue
		case stop.Err() != nil:
			<-d.slots
			d.giveBack(msg, false)
			continue
		}
		d.start(stop, work, msg)
	}
}

func (d *dispatcher) nakRest(it jetstream.MessagesContext) {
	for {
		msg, err := it.Next()
		if err != nil {
			return
		}
		d.giveBack(msg, false)
	}
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
			d.giveBack(it.msg, false)
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
	ev, err := broker.Decode(&nats.Msg{Subject: subject, Header: msg.Headers(), Data: msg.Data()})
	if err != nil {
		d.terminate(msg, err.Error())
		return nil, false
	}
	if len(d.sub.Types) > 0 && !slices.Contains(d.sub.Types, ev.Type()) {
		d.skip(msg)
		return nil, false
	}
	it := &item{msg: msg, ev: &ev, seq: meta.Sequence.Stream, attempt: d.attempts(meta), received: received}
	if d.keys != nil {
		it.key = partitionKey(&ev)
	}
	return it, true
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
func (d *dispatcher) process(stop, work context.Context, it *item, l *lease) {
	ctx, span := startProcessSpan(work, d.sub.Name, it)
	defer span.End()
	if d.alreadyDelivered(ctx, it) {
		return
	}
	for made := 0; ; made++ {
		var o Outcome
		if it.attempt > d.sub.Retry.MaxAttempts {
			o = Outcome{Kind: Dead, Reason: "gave up after " + strconv.Itoa(d.sub.Retry.MaxAttempts) + " attempts"}
		} else {
			o = d.attempt(ctx, it)
		}
		if o.Kind == Retry && o.Reason == reasonCancelled {
			// Stopped before an answer: handed back, not a failed attempt.
			d.giveBack(it.msg, made > 0)
			return
		}
		if o.Kind != Retry || it.key == "" {
			d.settle(ctx, it, o)
			return
		}
		d.noteRetry(ctx, it, o)
		if !d.waitInPlace(stop, it, o.Delay, l) {
			d.giveBack(it.msg, true)
			return
		}
		it.attempt++
	}
}

// alreadyDelivered acknowledges an event the app already answered 2xx for
// within the duplicate window. A failing lookup delivers (at least once).
func (d *dispatcher) alreadyDelivered(ctx context.Context, it *item) bool {
	seen, err := d.seen.Seen(ctx, d.sub.Name, it.ev.Source(), it.ev.ID())
	if err != nil {
		d.log.Warn("delivered-set lookup failed; delivering", "id", it.ev.ID(), "error", err)
		return false
	}
	if seen {
		d.m.deliveries.WithLabelValues(d.sub.Name, outcomeDuplicate).Inc()
		d.ack(it.msg)
	}
	return seen
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
	if !pause(stop, delay) {
		return false
	}
	return l.acquire(stop)
}

// settle maps an outcome to the broker: Ack, Nak with delay, or
// dead-letter then Term.
func (d *dispatcher) settle(ctx context.Context, it *item, o Outcome) {
	switch o.Kind {
	case Delivered:
		d.m.deliveries.WithLabelValues(d.sub.Name, o.Kind.String()).Inc()
		d.s.delivered.Add(1)
		if err := d.seen.Mark(ctx, d.sub.Name, it.ev.Source(), it.ev.ID()); err != nil {
			d.log.Warn("could not remember a delivery; a redelivery may reach the app again", "id", it.ev.ID(), "error", err)
		}
		d.ack(it.msg)
	case Retry:
		d.noteRetry(ctx, it, o)
		d.nak(it.msg, o.Delay)
	case Dead:
		d.m.deliveries.WithLabelValues(d.sub.Name, o.Kind.String()).Inc()
		d.deadLetter(ctx, it, o)
	}
}

func (d *dispatcher) noteRetry(ctx context.Context, it *item, o Outcome) {
	d.m.deliveries.WithLabelValues(d.sub.Name, Retry.String()).Inc()
	d.s.retried.Add(1)
	trace.SpanFromContext(ctx).AddEvent("retry", trace.WithAttributes(attrAttempt.Int(it.attempt),
		attribute.Int("http.response.status_code", o.Status), attribute.String("eventsidecar.reason", o.Reason),
		attribute.String("eventsidecar.retry_in", o.Delay.String())))
	d.log.InfoContext(ctx, "delivery attempt failed; retrying", "id", it.ev.ID(), "source", it.ev.Source(),
		"attempt", it.attempt, "status", o.Status, "reason", o.Reason, "retry_in", o.Delay)
}

// deadLetter stores the event with its dlq* extensions on the dead-letter
// topic and only then terminates the original; if the dead letter cannot be
// stored, the original goes back to the broker and comes again later.
func (d *dispatcher) deadLetter(ctx context.Context, it *item, o Outcome) {
	attempts := min(it.attempt, d.sub.Retry.MaxAttempts)
	dl := DeadLetterEvent(it.ev, o, attempts, d.sub.Name, time.Now())
	m := broker.Message{Topic: d.sub.DeadLetter(), Event: dl, MsgID: deadLetterID(d.sub.Name, it.seq), Fingerprint: dedup.Fingerprint(dl)}
	m.TraceParent, m.TraceState = traceHeaders(ctx)
	if rc := d.b.Publish(context.WithoutCancel(ctx), []broker.Message{m})[0]; rc.Err != nil {
		delay := Backoff(it.attempt, d.sub.Retry, rand.Float64)
		d.log.ErrorContext(ctx, "dead letter not stored; the event goes back to the broker", "id", it.ev.ID(),
			"reason", o.Reason, "error", rc.Err, "retry_in", delay)
		d.nak(it.msg, delay)
		return
	}
	d.s.deadLettered.Add(1)
	d.m.deadLetters.WithLabelValues(d.sub.Name).Inc()
	trace.SpanFromContext(ctx).AddEvent("dead-lettered", trace.WithAttributes(
		attribute.String("eventsidecar.reason", o.Reason), attribute.Int("http.response.status_code", o.Status),
		attribute.Int("eventsidecar.attempts", attempts), semconv.MessagingDestinationName(d.sub.DeadLetter())))
	d.log.WarnContext(ctx, "event dead-lettered", "id", it.ev.ID(), "source", it.ev.Source(), "attempts", attempts,
		"status", o.Status, "reason", o.Reason, "topic", d.sub.DeadLetter())
	if err := it.msg.TermWithReason("dead-lettered: " + o.Reason); err != nil {
		d.log.Warn("terminating a dead-lettered event failed; its redelivery is dead-lettered once", "id", it.ev.ID(), "error", err)
	}
}

// deadLetterID is the dead letter's Nats-Msg-Id: one per original stored
// event, so a dead letter stored again after a crash is a duplicate.
func deadLetterID(subscription string, seq uint64) string {
	sum := sha256.Sum256([]byte("deadletter\x00" + subscription + "\x00" + strconv.FormatUint(seq, 10)))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (d *dispatcher) skip(msg jetstream.Msg) {
	d.m.deliveries.WithLabelValues(d.sub.Name, outcomeSkipped).Inc()
	d.ack(msg)
}

func (d *dispatcher) terminate(msg jetstream.Msg, reason string) {
	d.m.deliveries.WithLabelValues(d.sub.Name, outcomeInvalid).Inc()
	d.log.Error("not a deliverable event; dropped", "subject", msg.Subject(), "reason", reason)
	_ = msg.TermWithReason("eventsidecar: " + reason)
}

func (d *dispatcher) ack(msg jetstream.Msg) {
	if err := msg.Ack(); err != nil {
		d.log.Warn("acknowledging to the broker failed; the event may come again and is then suppressed", "error", err)
	}
}

func (d *dispatcher) nak(msg jetstream.Msg, delay time.Duration) {
	var err error
	if delay > 0 {
		err = msg.NakWithDelay(delay)
	} else {
		err = msg.Nak()
	}
	if err != nil {
		d.log.Warn("handing an event back to the broker failed; it comes again after the ack wait", "error", err)
	}
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

// pause waits for d or until ctx ends; it reports whether d passed.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
