package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/broker"
)

// direct publishes straight to JetStream with nats.go's async API, over the
// broker client's connection: the baseline.
type direct struct {
	js      jetstream.JetStream
	subject string
	window  int
	timeout time.Duration
}

// newDirect publishes on b's connection with at most window acks
// outstanding; a publish waits up to timeout for a free slot and for its
// ack, as the sidecar's do.
func newDirect(b *broker.Client, window int, timeout time.Duration) (*direct, error) {
	js, err := jetstream.New(b.JetStream().Conn(),
		jetstream.WithPublishAsyncMaxPending(window),
		jetstream.WithPublishAsyncTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("bench: jetstream: %w", err)
	}
	return &direct{js: js, subject: b.Subject(topic), window: window, timeout: timeout}, nil
}

// inflight is one published message waiting for its ack.
type inflight struct {
	fut  jetstream.PubAckFuture
	sent time.Time
	err  error
}

// publish publishes the messages the sidecar would store for
// newEvent(0, seq), seq = 0, 1, ... while more(seq), and calls done with
// each message's outcome in publish order, from a single goroutine. sent is
// when the message was handed to the connection, acked when its ack (or
// error) arrived; acks of one stream arrive in order, so waiting for them
// in order adds no delay. It returns once every outcome has been passed to
// done.
func (d *direct) publish(ctx context.Context, more func(seq uint64) bool, done func(sent, acked time.Time, err error)) {
	pending := make(chan inflight, d.window)
	var wg sync.WaitGroup
	wg.Go(func() {
		for p := range pending {
			acked, err := p.wait(ctx)
			done(p.sent, acked, err)
		}
	})
	for seq := uint64(0); more(seq); seq++ {
		msg := natsMsg(d.subject, 0, seq)
		fut, err := d.js.PublishMsgAsync(msg, jetstream.WithStallWait(d.timeout))
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
