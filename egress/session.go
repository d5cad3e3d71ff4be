package egress

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventsidecar/eventsidecar/config"
)

// MaxSessionWindow bounds a session's unanswered deliveries.
const MaxSessionWindow = 1024

// SessionSpec is what an app's session asks for.
type SessionSpec struct {
	// Name names the subscription.
	Name string
	// AdHoc, when not nil, defines an ad-hoc subscription named Name
	// (AdHoc.Name must be Name); else Name must be configured.
	AdHoc *config.Subscription
	// MaxInFlight bounds the session's unanswered deliveries, at most
	// MaxSessionWindow; 0 takes the subscription's max_in_flight.
	MaxInFlight int
}

// Outbound is one delivery for the app to answer.
type Outbound struct {
	// ID names the delivery in the app's answer.
	ID string
	// Event is the stored event; the receiver must not modify it.
	Event *event.Event
	// Attempt is 1 for the first attempt.
	Attempt int
	// TraceParent and TraceState are the delivery's trace context, a child
	// of the publisher's.
	TraceParent, TraceState string
}

// Answer is the app's answer to a delivery.
type Answer struct {
	// Kind is Delivered (ack), Retry or Dead (reject); any other (the zero
	// Kind) is taken as Retry, so a malformed answer loses nothing.
	Kind Kind
	// Delay is, for Retry, the wait before the next attempt; 0 takes the
	// subscription's backoff. It is capped at max_backoff.
	Delay time.Duration
	// Reason is, for Dead, why the app rejected the event.
	Reason string
}

// Session delivers a subscription's events to one app connection (a gRPC
// Subscribe stream): Run fetches and settles them, Next hands each
// delivery out, Answer takes the app's answer. It shares its
// subscription's events with the subscription's other sessions and webhook.
// Safe for concurrent use; Close it when done.
type Session struct {
	m      *Manager
	s      *subscription
	window int
	// out queues the deliveries waiting for Next; an attempt waits for a
	// free slot before it is queued, so it never holds more than window.
	out chan *outbound

	closeOnce sync.Once
	closed    chan struct{} // closed when the session ends: no more deliveries

	abortOnce sync.Once
	aborted   chan struct{} // closed with abortErr when the session must end
	abortErr  error

	mu      sync.Mutex
	issued  uint64               // the last delivery id handed out
	waiting map[uint64]*outbound // deliveries waiting for their answer
}

// outbound is one attempt on a session.
type outbound struct {
	msg     Outbound
	attempt int
	state   atomic.Int32 // stateQueued, stateTaken or stateOver
	answer  chan Outcome // buffered: the first answer wins
}

const (
	stateQueued int32 = iota // not yet handed out by Next
	stateTaken               // handed out
	stateOver                // the attempt ended before being handed out
)

// OpenSession registers a session on spec's subscription and returns it; an
// ad-hoc subscription's consumer is created or updated first. Errors wrap
// ErrUnknownSubscription, ErrConflict, a *config.ValidationError (with the
// keys of the subscription, and "max_in_flight"), or the broker's.
func (m *Manager) OpenSession(ctx context.Context, spec SessionSpec) (*Session, error) {
	if err := validSpec(spec); err != nil {
		return nil, err
	}
	s, err := m.attach(ctx, spec)
	if err != nil {
		return nil, err
	}
	window := spec.MaxInFlight
	if window == 0 {
		window = min(s.sub.MaxInFlight, MaxSessionWindow)
	}
	return &Session{
		m: m, s: s, window: window,
		out:     make(chan *outbound, window),
		closed:  make(chan struct{}),
		aborted: make(chan struct{}),
		waiting: map[uint64]*outbound{},
	}, nil
}

// validSpec checks spec's window and ad-hoc subscription.
func validSpec(spec SessionSpec) error {
	var problems []config.Problem
	if spec.MaxInFlight < 0 || spec.MaxInFlight > MaxSessionWindow {
		problems = append(problems, config.Problem{Key: "max_in_flight",
			Message: fmt.Sprintf("must be from 0 to %d, got %d", MaxSessionWindow, spec.MaxInFlight)})
	}
	if spec.AdHoc != nil {
		var ve *config.ValidationError
		if err := spec.AdHoc.Validate(); errors.As(err, &ve) {
			problems = append(problems, ve.Problems...)
		}
		if spec.AdHoc.Name != spec.Name {
			problems = append(problems, config.Problem{Key: "name", Message: "differs from the stream's subscription name"})
		}
	} else if spec.Name == "" {
		problems = append(problems, config.Problem{Key: "name", Message: "is required"})
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("egress: stream: %w", &config.ValidationError{Problems: problems})
}

// Name is the name of the session's subscription.
func (st *Session) Name() string { return st.s.sub.Name }

// Window is the most deliveries the session holds unanswered at once.
func (st *Session) Window() int { return st.window }

// Run delivers the subscription's events to the session until ctx ends or
// the session is aborted (ErrSlowReader), then ends the session: its
// unanswered deliveries go back to the broker at once. It returns nil when
// ctx ended, else why the session ended.
func (st *Session) Run(ctx context.Context) error {
	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-st.aborted:
			cancel()
		case <-stop.Done():
		}
	}()
	context.AfterFunc(stop, st.end)
	d, err := st.m.dispatcher(stop, st.s, sessionDeliverer{st}, st.window)
	if err == nil {
		d.run(stop, st.s.sub.Timeout+graceMargin)
	}
	st.end()
	if err != nil {
		return err
	}
	select {
	case <-st.aborted:
		return st.abortErr
	default:
		return nil
	}
}

// Next waits for the next delivery and hands it out. It returns
// ErrSessionClosed once the session has ended, or ctx's error.
func (st *Session) Next(ctx context.Context) (Outbound, error) {
	for {
		select {
		case ob := <-st.out:
			if ob.state.CompareAndSwap(stateQueued, stateTaken) {
				return ob.msg, nil
			}
		case <-st.closed:
			return Outbound{}, ErrSessionClosed
		case <-ctx.Done():
			return Outbound{}, ctx.Err()
		}
	}
}

// Answer settles the delivery id with the app's answer. An answer to a
// delivery already settled (answered, or its timeout passed) is ignored;
// an id never handed out is ErrUnknownDelivery.
func (st *Session) Answer(id string, a Answer) error {
	n, err := strconv.ParseUint(id, 10, 64)
	st.mu.Lock()
	issued, ob := st.issued, st.waiting[n]
	st.mu.Unlock()
	if err != nil || n == 0 || n > issued {
		return fmt.Errorf("%w %q", ErrUnknownDelivery, id)
	}
	if ob == nil {
		return nil
	}
	if ob.state.Load() != stateTaken {
		return fmt.Errorf("%w %q", ErrUnknownDelivery, id)
	}
	select {
	case ob.answer <- st.outcome(ob.attempt, a):
	default:
	}
	return nil
}

// outcome is what an answer to attempt means, under the subscription's
// retry policy: the app's own decision (CauseAnswer), a retry included.
func (st *Session) outcome(attempt int, a Answer) Outcome {
	r := st.s.sub.Retry
	switch a.Kind {
	case Delivered:
		return Outcome{Kind: Delivered, Reason: "acknowledged"}
	case Dead:
		reason := "rejected"
		if a.Reason != "" {
			reason += ": " + a.Reason
		}
		return Outcome{Kind: Dead, Reason: reason}
	default:
		delay := a.Delay
		if delay <= 0 {
			delay = Backoff(attempt, r, nil)
		}
		return Outcome{Kind: Retry, Delay: min(delay, r.MaxBackoff), Reason: "retry requested"}
	}
}

// Close ends the session, if Run has not, and unregisters it.
func (st *Session) Close() {
	st.end()
	st.closeOnce.Do(func() { st.m.detach(st.s) })
}

// end stops handing out deliveries; attempts waiting for an answer give
// up (their events go back to the broker).
func (st *Session) end() {
	st.mu.Lock()
	defer st.mu.Unlock()
	select {
	case <-st.closed:
	default:
		close(st.closed)
	}
}

// abort ends the session because of err.
func (st *Session) abort(err error) {
	st.abortOnce.Do(func() {
		st.abortErr = err
		close(st.aborted)
	})
}

// attempt queues one delivery for Next and waits for its answer, the
// subscription's timeout, or the end of ctx or of the session.
func (st *Session) attempt(ctx context.Context, d Delivery) Outcome {
	cancelled := Outcome{Kind: Retry, Cause: CauseCancelled, Reason: reasonCancelled}
	parent, state := traceHeaders(ctx)
	ob := &outbound{attempt: d.Attempt, answer: make(chan Outcome, 1)}
	st.mu.Lock()
	st.issued++
	id := st.issued
	st.waiting[id] = ob
	st.mu.Unlock()
	defer func() {
		ob.state.CompareAndSwap(stateQueued, stateOver)
		st.mu.Lock()
		delete(st.waiting, id)
		st.mu.Unlock()
	}()
	ob.msg = Outbound{ID: strconv.FormatUint(id, 10), Event: d.Event, Attempt: d.Attempt, TraceParent: parent, TraceState: state}
	select {
	case st.out <- ob:
	case <-st.closed:
		return cancelled
	case <-ctx.Done():
		return cancelled
	}
	timeout := st.s.sub.Timeout
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case o := <-ob.answer:
		return o
	case <-timer.C:
		if ob.state.CompareAndSwap(stateQueued, stateOver) {
			st.abort(ErrSlowReader)
			return cancelled
		}
		return Decide(0, nil, &timeoutError{after: timeout, err: context.DeadlineExceeded}, d.Attempt, st.s.sub.Retry, nil)
	case <-st.closed:
		return cancelled
	case <-ctx.Done():
		return cancelled
	}
}

// sessionDeliverer makes a dispatcher's attempts on a Stream.
type sessionDeliverer struct{ st *Session }

// Attempt implements deliverer.
func (sd sessionDeliverer) Attempt(ctx context.Context, d Delivery) Outcome {
	start := time.Now()
	o := sd.st.attempt(ctx, d)
	o.Took = time.Since(start)
	return o
}
