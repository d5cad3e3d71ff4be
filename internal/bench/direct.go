package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/broker"
)

// Async publishes straight to JetStream with nats.go's async API: the
// messages msg(0), msg(1), ... with a bounded window of outstanding acks.
// The in-process baseline publishes the very messages the sidecar stores.
// Measure may be called once at a time.
type Async struct {
	js      jetstream.JetStream
	msg     func(seq uint64) *nats.Msg
	window  int
	timeout time.Duration
}

// NewAsync publishes msg(seq) on nc with at most window acks outstanding;
// a publish waits up to timeout for a free slot and for its ack, as the
// sidecar's do.
func NewAsync(nc *nats.Conn, msg func(seq uint64) *nats.Msg, window int, timeout time.Duration) (*Async, error) {
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(window),
		jetstream.WithPublishAsyncTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("bench: jetstream: %w", err)
	}
	return &Async{js: js, msg: msg, window: window, timeout: timeout}, nil
}

// newDirect is the baseline: it publishes on b's connection the messages
// the sidecar would store for newEvent(0, seq), seq = 0, 1, ...
func newDirect(b *broker.Client, window int, timeout time.Duration) (*Async, error) {
	subject := b.Subject(Topic)
	return NewAsync(b.JetStream().Conn(), func(seq uint64) *nats.Msg { return StoredMsg(subject, 0, seq) }, window, timeout)
}

// Measure publishes over l's time frame (l.Concurrency is not used: there
// is one publisher) and summarizes it as Load.Measure does; a latency runs
// from handing a message to the connection to its ack.
func (d *Async) Measure(ctx context.Context, l Load) Result {
	return summarize(scenario{concurrency: d.window, perRequest: 1}, d.measure(ctx, l))
}

// measure publishes while l's window admits it and returns what it saw.
func (d *Async) measure(ctx context.Context, l Load) measurement {
	s := newSample(int(l.Duration.Seconds() * 4 * expectedPerSecond))
	win := l.window()
	g := gate{win: win}
	d.publish(ctx,
		func(uint64) bool { return g.admit(ctx, time.Now()) },
		func(sent, acked time.Time, err error) { s.add(sent, acked, win, err) })
	return measurement{samples: []sample{s}, win: win}
}

// inflight is one published message waiting for its ack.
type inflight struct {
	fut  jetstream.PubAckFuture
	sent time.Time
	err  error
}

// publish publishes msg(seq), seq = 0, 1, ... while more(seq), and calls
// done with each message's outcome in publish order, from a single
// goroutine. sent is when the message was handed to the connection, acked
// when its ack (or error) arrived; acks of one stream arrive in order, so
// waiting for them in order adds no delay. It returns once every outcome
// has been passed to done.
func (d *Async) publish(ctx context.Context, more func(seq uint64) bool, done func(sent, acked time.Time, err error)) {
	pending := make(chan inflight, d.window)
	var wg sync.WaitGroup
	wg.Go(func() {
		for p := range pending {
			acked, err := p.wait(ctx)
			done(p.sent, acked, err)
		}
	})
	for seq := uint64(0); more(seq); seq++ {
		fut, err := d.js.PublishMsgAsync(d.msg(seq), jetstream.WithStallWait(d.timeout))
		pending <- inflight{fut: fut, sent: time.Now(), err: err}
	}
	close(pending)
	wg.Wait()
}

// wait returns when p's ack arrived, with its error.
func (p inflight) wait(ctx context.Context) (time.Time, error) {
	if p.err != nil {
		return p.sent, fmt.Errorf("bench: publish: %w", p.err)
	}
	select {
	case <-p.fut.Ok():
		return time.Now(), nil
	case err := <-p.fut.Err():
		return time.Now(), fmt.Errorf("bench: publish ack: %w", err)
	case <-ctx.Done():
		return time.Now(), ctx.Err()
	}
}
