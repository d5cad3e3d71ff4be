package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	// setupMinWait and setupMaxWait bound the backoff between attempts to
	// put the stream and the Prepare steps in place once connected.
	setupMinWait = 500 * time.Millisecond
	setupMaxWait = 10 * time.Second
)

// errSettingUp is why a connected Client is not ready before its first
// set-up has completed.
var errSettingUp = errors.New("setting up the stream")

// step is one piece of work done each time the broker is connected.
type step struct {
	name string
	fn   func(context.Context) error
}

// setup tracks putting the stream and the Prepare steps in place: it is
// complete from a pass that did all of them until the connection is lost.
type setup struct {
	run     sync.Mutex    // held while a pass or a Prepare step runs
	request chan struct{} // asks the set-up loop for a pass

	mu       sync.Mutex
	steps    []step
	gen      uint64           // counts lost connections, so a pass that straddled one does not complete
	stream   jetstream.Stream // the stream as last put in place; nil before
	err      error            // why the Client is not set up
	complete chan struct{}    // closed while set up
	closed   bool             // whether complete is closed
}

func newSetup() setup {
	return setup{request: make(chan struct{}, 1), err: errSettingUp, complete: make(chan struct{})}
}

// ready returns a channel closed while the set-up is complete.
func (s *setup) ready() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.complete
}

// done returns the stream when the set-up is complete, else why not.
func (s *setup) done() (jetstream.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		return nil, s.err
	}
	return s.stream, nil
}

// lost marks the set-up incomplete after a lost connection.
func (s *setup) lost() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	s.failLocked(errConnectionLost)
}

// errConnectionLost is why the set-up is incomplete after a lost
// connection, until a pass completes on the new one.
var errConnectionLost = errors.New("connection lost; setting up again once reconnected")

// fail marks the set-up incomplete for err.
func (s *setup) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLocked(err)
}

func (s *setup) failLocked(err error) {
	s.err = err
	if s.closed {
		s.complete, s.closed = make(chan struct{}), false
	}
}

// generation is the current count of lost connections.
func (s *setup) generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// succeed marks the set-up complete with st, unless the connection was
// lost since generation gen.
func (s *setup) succeed(st jetstream.Stream, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stream = st
	if s.gen != gen || s.closed {
		return
	}
	s.err, s.closed = nil, true
	close(s.complete)
}

// lastStream is the stream as last put in place; nil before the first.
func (s *setup) lastStream() jetstream.Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream
}

func (s *setup) add(st step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps = append(s.steps, st)
}

// all returns the steps added so far.
func (s *setup) all() []step {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.steps
}

// Prepare adds fn to the work done each time the Client connects, after
// the stream is in place and before it reports ready: creating the
// delivered-set bucket or a subscription's consumer, say. fn must be
// idempotent and return when ctx ends (each run is bounded by the publish
// timeout). When the Client is ready now, fn runs before Prepare returns,
// and if it fails, Ready reports it and it is retried in the background;
// otherwise it runs once connected. name says what fn puts in place, for
// Ready's reason. Safe for concurrent use.
func (c *Client) Prepare(name string, fn func(context.Context) error) {
	c.setup.run.Lock()
	defer c.setup.run.Unlock()
	c.setup.add(step{name: name, fn: fn})
	if _, err := c.setup.done(); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.PublishTimeout)
	defer cancel()
	if err := fn(ctx); err != nil {
		c.setup.fail(fmt.Errorf("%s: %w", name, err))
		c.log.Warn("broker: not set up; retrying", "url", c.url, "error", err)
		c.requestSetup()
	}
}

// requestSetup asks the set-up loop for a pass, without blocking: one
// pending request is enough.
func (c *Client) requestSetup() {
	select {
	case c.setup.request <- struct{}{}:
	default:
	}
}

// setupLoop makes a set-up pass each time it is asked to (at start, after
// each reconnect, so that a broker that lost its state gets the stream and
// consumers back), until ctx ends.
func (c *Client) setupLoop(ctx context.Context) {
	defer c.bg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.setup.request:
		}
		c.setUpUntilDone(ctx)
	}
}

// setUpUntilDone makes set-up passes with backoff until one succeeds, the
// connection is down (the reconnect asks again) or ctx ends.
func (c *Client) setUpUntilDone(ctx context.Context) {
	wait := setupMinWait
	for c.nc.Status() == nats.CONNECTED {
		err := c.setUp(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		c.setup.fail(err)
		c.log.Warn("broker: not set up; retrying", "url", c.url, "error", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, setupMaxWait)
	}
}

// setUp puts the stream and then every Prepare step in place, each bounded
// by the publish timeout.
func (c *Client) setUp(ctx context.Context) error {
	c.setup.run.Lock()
	defer c.setup.run.Unlock()
	gen := c.setup.generation()
	attempt, cancel := context.WithTimeout(ctx, c.cfg.PublishTimeout)
	st, err := ensureStream(attempt, c.js, c.cfg)
	cancel()
	if err != nil {
		return err
	}
	for _, s := range c.setup.all() {
		attempt, cancel := context.WithTimeout(ctx, c.cfg.PublishTimeout)
		err := s.fn(attempt)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	c.setup.succeed(st, gen)
	return nil
}
