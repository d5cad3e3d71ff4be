package egress

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/internal/pause"
)

// fetchErrorPause is the pause after the consumer fails to hand out an
// event, and before consuming again after the iterator ended on its own.
const fetchErrorPause = time.Second

// iterator is the dispatcher's current pull iterator on its consumer.
type iterator struct {
	jetstream.MessagesContext
	unwatch func() bool // stops draining it when stop ends
}

// consume opens a pull iterator on the consumer, drained when stop ends.
func (d *dispatcher) consume(stop context.Context) (*iterator, error) {
	opts := append(pullOptions(d.sub, d.window), jetstream.PullHeartbeat(d.watch.heartbeat), jetstream.PullExpiry(pullExpiry))
	it, err := d.cons.Messages(opts...)
	if err != nil {
		return nil, err
	}
	return &iterator{MessagesContext: it, unwatch: context.AfterFunc(stop, it.Drain)}, nil
}

// reconsume replaces an iterator that ended on its own (the consumer was
// deleted, or recreated after the broker lost its state; the connection
// closed) after a pause; it returns nil once stop ended.
func (d *dispatcher) reconsume(stop context.Context, old *iterator, why error) *iterator {
	old.unwatch()
	d.log.Warn("the subscription's consumer ended the pull; consuming again", "error", why, "in", fetchErrorPause)
	if !pause.For(stop, fetchErrorPause) {
		return nil
	}
	return d.consumeAgain(stop)
}

// consumeAgain opens a pull iterator, trying again after a pause until it
// succeeds; it returns nil once stop ended.
func (d *dispatcher) consumeAgain(stop context.Context) *iterator {
	for {
		it, err := d.consume(stop)
		if err == nil {
			return it
		}
		d.log.Warn("consuming the subscription's events failed; trying again", "error", err, "in", fetchErrorPause)
		if !pause.For(stop, fetchErrorPause) {
			return nil
		}
	}
}

// fetch takes events from the consumer, and dispatches each, until the
// iterator is drained after stop.
func (d *dispatcher) fetch(stop, work context.Context, it *iterator) {
	for {
		if it == nil {
			if it = d.consumeAgain(stop); it == nil {
				return
			}
		}
		msg, err := d.next(it)
		switch {
		case err == nil && stop.Err() != nil:
			d.giveBack(msg)
		case err == nil:
			if !d.dispatch(stop, work, msg) {
				d.nakRest(it)
				return
			}
		case ended(err) && stop.Err() != nil:
			return
		case ended(err):
			it = d.reconsume(stop, it, err)
		default:
			d.log.Warn("fetching events failed", "error", err)
			pause.For(stop, fetchErrorPause)
		}
	}
}

// ended reports whether err from Next means that the iterator is over.
func ended(err error) bool {
	return errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, jetstream.ErrBadRequest)
}

// next waits for the consumer's next event. Soon
// after an event it waits in short steps, each of which makes nats.go
// check that a pull request is out; later in steps long enough for a
// missed heartbeat to show, after which nats.go issues a new pull request
// (the one out was lost, with the consumer's leader say). It returns the
// error of a wait that failed otherwise.
func (d *dispatcher) next(it *iterator) (jetstream.Msg, error) {
	d.watch.waiting()
	defer d.watch.busy()
	for {
		wait, long := d.watch.wait()
		msg, err := it.Next(jetstream.NextMaxWait(wait))
		switch {
		case err == nil:
			d.watch.heard(true)
			return msg, nil
		case errors.Is(err, nats.ErrTimeout):
			// A long wait without a missed heartbeat: the broker holds the
			// pull request.
			if long && d.b.Conn().IsConnected() {
				d.watch.heard(false)
			}
		case errors.Is(err, jetstream.ErrNoHeartbeat):
			d.watch.missed()
		default:
			return nil, err
		}
	}
}

// nakRest hands back the events left in a drained iterator.
func (d *dispatcher) nakRest(it *iterator) {
	for {
		msg, err := it.Next()
		if err != nil {
			return
		}
		d.giveBack(msg)
	}
}
