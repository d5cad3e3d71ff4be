package egress

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/eventsidecar/eventsidecar/config"
)

// The opening rule of a circuit (contract §5, "an app that is down is not
// a failing event").
const (
	// unavailableInRow is how many 429 or 503 answers in a row, from any
	// events, with no answer in between, open the circuit: the app says it
	// cannot take events.
	unavailableInRow = 2
	// failingInRow is how many different events in a row, with no answer
	// in between, that got a retryable failure (CauseUnavailable or
	// CauseFailure) open the circuit. One event failing on its own is what a
	// poison event does: it follows the §5 table and is dead-lettered after
	// max_attempts.
	failingInRow = 2
)

// reasonFirstAnswer is why a circuit is paused until the app first answers.
const reasonFirstAnswer = "waiting for the app's first answer"

// circuit decides, for one webhook dispatcher, whether the app is down,
// so that an outage of any length sends nothing to the dead letters.
//
// It starts open, holding deliveries until the app first answers after
// the sidecar starts: any HTTP answer ends the hold, and is then judged
// as below. It opens at once on an attempt that got no answer at all
// (CauseUnreachable), and on unavailableInRow 429/503 answers or
// failingInRow different events with a retryable failure in a row, with
// no answer (2xx, or a 4xx that rejects the event) in between. While open,
// one event at a time is attempted as a probe: the first at once, each
// next one after the last failed, after a backoff growing from
// initial_backoff by multiplier up to max_backoff (without jitter); the
// events waiting for their turn keep their slots, so nothing more is
// fetched. A failure (retryable, or no answer) that opens the circuit or
// comes while it is open does not count toward max_attempts. An answer,
// 2xx or a rejecting 4xx, closes it: the app is up and judges the events.
// Each change is logged and counted (eventsidecar_subscription_circuit_open
// and _transitions_total).
//
// A stream's dispatcher has no circuit (every attempt is made at once
// and counts, unless cancelled): an app that is down has no stream open, a
// stream that ends hands its deliveries back unattempted, a delivery the
// app does not take within the timeout ends the stream, and a connected
// app's answers, retry included, are its own decisions about the events.
//
// Safe for concurrent use.
type circuit struct {
	r       config.Retry
	log     *slog.Logger
	onState func(paused, first bool) // reports the state to the metrics

	mu          sync.Mutex
	paused      bool
	held        bool // paused until the app first answers
	reason      string
	changed     chan struct{}       // closed (and replaced) when a waiting delivery should look again
	unavailable int                 // 429/503 answers in a row while delivering
	failing     map[uint64]struct{} // stream sequences of the events failing in a row while delivering
	probing     bool                // a probe is being attempted
	probes      int                 // failures in a row that put the next probe off: the opening one, then each probe's
	nextProbe   time.Time           // no probe starts before
}

// newCircuit returns a circuit for retry policy r, open until the app's
// first answer. onState is called with the state it starts in (first), and
// then, under the circuit's lock, with each change.
func newCircuit(r config.Retry, log *slog.Logger, onState func(paused, first bool)) *circuit {
	c := &circuit{r: r, log: log, onState: onState, paused: true, held: true, reason: reasonFirstAnswer,
		changed: make(chan struct{}), failing: map[uint64]struct{}{}}
	onState(true, true)
	log.Info("delivery held until the app first answers")
	return c
}

// state reports whether the circuit is open, and why.
func (c *circuit) state() (paused bool, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused, c.reason
}

// allow waits until a delivery may make its attempt: at once while the
// circuit is closed; while it is open, until it is this delivery's turn to
// probe (probe is true; the caller must then record its outcome) or the
// circuit closes. It reports false when ctx ended first.
func (c *circuit) allow(ctx context.Context) (probe, ok bool) {
	for {
		c.mu.Lock()
		if !c.paused {
			c.mu.Unlock()
			return false, true
		}
		wait := time.Until(c.nextProbe)
		if !c.probing && wait <= 0 {
			c.probing = true
			c.mu.Unlock()
			return true, true
		}
		changed, probing := c.changed, c.probing
		c.mu.Unlock()
		if !waitTurn(ctx, changed, wait, probing) {
			return false, false
		}
	}
}

// untilProbe is how long until the next probe may start; 0 while the
// circuit is closed.
func (c *circuit) untilProbe() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.paused {
		return 0
	}
	return max(time.Until(c.nextProbe), 0)
}

// waitTurn waits until changed is closed or, unless probing (a probe is
// out: only its end changes the turn), wait has passed; it reports false
// when ctx ended first.
func waitTurn(ctx context.Context, changed <-chan struct{}, wait time.Duration, probing bool) bool {
	var timer <-chan time.Time
	if !probing {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-changed:
	case <-timer:
	case <-ctx.Done():
		return false
	}
	return true
}

// record takes the outcome of an attempt of the event at stream sequence
// seq (a probe when allow said so) and reports whether the attempt counts
// toward max_attempts: a failure that opens the circuit, or that comes
// while it is open, does not, nor does a cancelled one.
func (c *circuit) record(seq uint64, o Outcome, probe bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if probe {
		c.probing = false
		c.wake()
	}
	if o.Cause == CauseCancelled {
		return false
	}
	if c.held && (o.Status != 0 || o.Cause == CauseAnswer) {
		c.resume(o)
	}
	switch {
	case o.Cause == CauseAnswer:
		c.resume(o)
		return true
	case !c.paused && !c.opens(seq, o):
		return true
	}
	c.pause(pauseReason(o), probe)
	return false
}

// opens counts a failure while the circuit is closed and reports whether
// it opens the circuit.
func (c *circuit) opens(seq uint64, o Outcome) bool {
	if o.Cause == CauseUnreachable {
		return true
	}
	if o.Cause == CauseUnavailable {
		c.unavailable++
	}
	c.failing[seq] = struct{}{}
	return c.unavailable >= unavailableInRow || len(c.failing) >= failingInRow
}

// pause opens the circuit, or keeps it open with reason; a failed probe
// puts the next one off.
func (c *circuit) pause(reason string, probe bool) {
	switch {
	case !c.paused:
		c.paused, c.probes = true, 0
		c.onState(true, false)
		c.log.Warn("the app is down; delivery paused, probing with one event at a time", "reason", reason)
	case reason != c.reason:
		c.log.Warn("delivery still paused", "reason", reason)
	}
	if probe || c.probes == 0 {
		c.probes++
		c.nextProbe = time.Now().Add(backoffCeiling(c.probes, c.r))
	}
	c.reason = reason
}

// resume closes the circuit after an answer and starts counting failures
// anew.
func (c *circuit) resume(o Outcome) {
	c.unavailable = 0
	clear(c.failing)
	if !c.paused {
		return
	}
	c.log.Info("the app answers; delivery resumed", "status", o.Status, "was", c.reason)
	c.paused, c.held, c.reason = false, false, ""
	c.onState(false, false)
	c.wake()
}

// wake lets every waiting delivery look again.
func (c *circuit) wake() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// pauseReason says why a failure means the app is down.
func pauseReason(o Outcome) string {
	switch {
	case o.Cause == CauseUnreachable:
		return "app unreachable: " + o.Reason
	case o.Status != 0:
		return fmt.Sprintf("every event answered HTTP %d", o.Status)
	}
	return "every event failed: " + o.Reason
}

// state is the subscription's state and its reason, as Stats shows them,
// with streams open on it in this sidecar.
func (s *subscription) state(streams int) (state, reason string) {
	c := s.circuit.Load()
	switch {
	case s.notServed != "":
		return StatePaused, s.notServed
	case c != nil:
		if paused, why := c.state(); paused {
			return StatePaused, why
		}
		return StateDelivering, ""
	case s.hook != nil:
		return StatePaused, reasonFirstAnswer
	case streams == 0:
		return StatePaused, "no stream open"
	}
	return StateDelivering, ""
}
