package egress

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// keyed serializes the deliveries of events that share a partition key:
// while a key is busy its later events wait, in the order they arrived
// (the stream's order), and other keys go on. Safe for concurrent use.
type keyed struct {
	mu     sync.Mutex
	queues map[string][]*item // present (perhaps empty) while the key is busy
}

func newKeyed() *keyed { return &keyed{queues: map[string][]*item{}} }

// admit reports whether it may be delivered now; if its key is busy, it is
// queued behind the key's earlier events and admit returns false.
func (k *keyed) admit(key string, it *item) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	q, busy := k.queues[key]
	if !busy {
		k.queues[key] = nil
		return true
	}
	k.queues[key] = append(q, it)
	return false
}

// next returns the key's next waiting event, or nil after marking the key
// idle when none waits.
func (k *keyed) next(key string) *item {
	k.mu.Lock()
	defer k.mu.Unlock()
	q := k.queues[key]
	if len(q) == 0 {
		delete(k.queues, key)
		return nil
	}
	it := q[0]
	q[0] = nil
	k.queues[key] = q[1:]
	return it
}

// giveBack hands an event back to the broker at stop; its attempts are
// counted by the failures recorded (see limitStep), so a hand-back uses
// none up. An ordered subscription's events are held until every event is
// settled and the pin is released, and then handed back in stream order
// (handBack), so that the broker's redelivery queue is in stream order. Events of the
// subscription this dispatcher never fetched may still reach the next
// pinned puller before them: order across a hand-over is not guaranteed.
func (d *dispatcher) giveBack(msg jetstream.Msg) {
	if d.keys == nil {
		nak(msg, 0, d.log)
		return
	}
	d.pinMu.Lock()
	d.returned = append(d.returned, msg)
	d.pinMu.Unlock()
}

// handBack hands back the events giveBack held, in stream order.
func (d *dispatcher) handBack() {
	d.pinMu.Lock()
	returned := d.returned
	d.returned = nil
	d.pinMu.Unlock()
	slices.SortFunc(returned, func(a, b jetstream.Msg) int { return cmp.Compare(streamSeq(a), streamSeq(b)) })
	for _, msg := range returned {
		nak(msg, 0, d.log)
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
