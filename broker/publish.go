package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/wire"
)

// Message is one validated event to store. Publish only reads it.
type Message struct {
	// Topic is the event's topic; it is stored on Client.Subject(Topic).
	Topic string
	// Event is the event, stored as Encode writes it.
	Event *event.Event
	// MsgID is the idempotency key, sent as Nats-Msg-Id.
	MsgID string
	// Fingerprint identifies the event's content, sent as
	// FingerprintHeader so that a duplicate can be told from a reuse of
	// its key with a different event.
	Fingerprint string
	// TraceParent and TraceState are the W3C trace context the event was
	// published in, stored as the traceparent and tracestate headers
	// (each when not empty).
	TraceParent, TraceState string
}

// Receipt is the broker's answer for one Message.
type Receipt struct {
	// Sequence is the event's stream sequence (the original's for a
	// duplicate).
	Sequence uint64
	// Duplicate is true when the broker already held an event with the
	// same MsgID within the duplicate window; nothing new was stored.
	Duplicate bool
	// Fingerprint is, for a duplicate, the stored original's
	// FingerprintHeader ("" if it could not be read).
	Fingerprint string
	// ID and Source are, for a duplicate, the stored original's ("" if it
	// could not be read): a request whose id the sidecar generated answers
	// with the first one's.
	ID, Source string
	// Err is nil when the event is stored or a duplicate; else it wraps
	// ErrOverloaded or ErrUnavailable, or is the context's error.
	Err error
}

// Publish stores msgs and returns one receipt per message, in the same
// order. All messages are sent before any acknowledgement is awaited, and
// the wait is bounded by ctx and the publish timeout. A receipt reports an
// event stored only when the broker acknowledged it. When fewer than
// len(msgs) of the max_pending slots are free nothing is sent and every
// receipt wraps ErrOverloaded; when the connection is down, or the stream
// and the Prepare steps (the subscriptions' consumers, which would miss
// the event) are not in place since it came up, nothing is sent and every
// receipt wraps ErrUnavailable. It is safe for concurrent use;
// each call waits for its own acknowledgements only.
func (c *Client) Publish(ctx context.Context, msgs []Message) []Receipt {
	receipts := make([]Receipt, len(msgs))
	n := int64(len(msgs))
	if n == 0 {
		return receipts
	}
	if !c.slots.TryAcquire(n) {
		return fill(receipts, ErrOverloaded)
	}
	if err := c.settled(); err != nil {
		c.slots.Release(n)
		return fill(receipts, fmt.Errorf("%w: %v", ErrUnavailable, err))
	}
	deadline := time.Now().Add(c.cfg.PublishTimeout)
	futures := c.send(msgs, receipts)
	for i, f := range futures {
		if f != nil {
			receipts[i] = c.await(ctx, f, deadline)
		}
	}
	return receipts
}

func fill(receipts []Receipt, err error) []Receipt {
	for i := range receipts {
		receipts[i].Err = err
	}
	return receipts
}

// send publishes every message asynchronously. A message that could not be
// sent gets its error in receipts, its slot back and a nil future.
func (c *Client) send(msgs []Message, receipts []Receipt) []jetstream.PubAckFuture {
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		f, err := c.js.PublishMsgAsync(Encode(c.Subject(m.Topic), m))
		if err != nil {
			c.slots.Release(1)
			receipts[i].Err = c.classify(err)
			continue
		}
		futures[i] = f
	}
	return futures
}

// await waits for one acknowledgement until ctx ends. The publisher gives
// up on it after the publish timeout (its ack timeout, which Start sets), so
// that no timer of its own is needed. The message's slot is released when
// its answer comes, even after await gave up on it. A duplicate's original
// is read by deadline, the publish's.
func (c *Client) await(ctx context.Context, f jetstream.PubAckFuture, deadline time.Time) Receipt {
	select {
	case ack := <-f.Ok():
		c.slots.Release(1)
		return c.receipt(ctx, ack, deadline)
	case err := <-f.Err():
		c.slots.Release(1)
		return Receipt{Err: c.classify(err)}
	case <-ctx.Done():
		c.releaseLater(f)
		return Receipt{Err: fmt.Errorf("broker: publish: %w", ctx.Err())}
	}
}

// releaseLater releases f's slot once the publisher has its answer, which
// comes within the publish timeout (the publisher times it out).
func (c *Client) releaseLater(f jetstream.PubAckFuture) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		c.slots.Release(1)
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		select {
		case <-f.Ok():
		case <-f.Err():
		}
		c.slots.Release(1)
	}()
}

func (c *Client) receipt(ctx context.Context, ack *jetstream.PubAck, deadline time.Time) Receipt {
	r := Receipt{Sequence: ack.Sequence, Duplicate: ack.Duplicate}
	if ack.Duplicate {
		ctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		c.readOriginal(ctx, &r)
	}
	return r
}

// readOriginal fills in r's Fingerprint, ID and Source from the stored
// original of a duplicate; they stay "" if it cannot be read.
func (c *Client) readOriginal(ctx context.Context, r *Receipt) {
	var m *jetstream.RawStreamMsg
	st, err := c.eventsStream(ctx)
	if err == nil {
		m, err = st.GetMsg(ctx, r.Sequence)
	}
	if err != nil {
		c.log.Warn("broker: read the original of a duplicate", "stream", c.cfg.Stream, "sequence", r.Sequence, "error", err)
		return
	}
	r.Fingerprint = m.Header.Get(FingerprintHeader)
	r.ID, _ = wire.DecodeHeader(m.Header.Get(wire.HeaderPrefix + "id"))
	r.Source, _ = wire.DecodeHeader(m.Header.Get(wire.HeaderPrefix + "source"))
}

// eventsStream is the events stream: as last put in place, or looked up
// when a publish succeeded before the first set-up pass did.
func (c *Client) eventsStream(ctx context.Context) (jetstream.Stream, error) {
	if st := c.setup.lastStream(); st != nil {
		return st, nil
	}
	st, err := c.js.Stream(ctx, c.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("broker: look up stream %q: %w", c.cfg.Stream, err)
	}
	return st, nil
}

// classify maps a publish error to ErrOverloaded (the publisher stalled) or
// ErrUnavailable (no acknowledgement within the publish timeout, no
// responders, disconnected, closed, or any other failure to store),
// keeping the cause in the message.
func (c *Client) classify(err error) error {
	switch {
	case errors.Is(err, jetstream.ErrTooManyStalledMsgs):
		return fmt.Errorf("%w: %v", ErrOverloaded, err)
	case errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		return fmt.Errorf("%w: no acknowledgement within %s", ErrUnavailable, c.cfg.PublishTimeout)
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}
