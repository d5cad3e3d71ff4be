package egress

import (
	"context"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Kind is what an attempt's answer means for the event.
type Kind int

// The outcomes of a delivery attempt (contract §5).
const (
	// Delivered: the app answered 2xx; acknowledge to the broker. Kinds
	// start at 1, so that the zero Kind (and Outcome) means no outcome,
	// never "delivered".
	Delivered Kind = iota + 1
	// Retry: try again after Outcome.Delay.
	Retry
	// Dead: dead-letter the event, then acknowledge it.
	Dead
)

// String names the kind, as used in metric labels.
func (k Kind) String() string {
	switch k {
	case Delivered:
		return "delivered"
	case Retry:
		return "retry"
	case Dead:
		return "dead_letter"
	default:
		return "none"
	}
}

// Cause is what the end of an attempt says about the app, beyond what it
// means for the event (Kind): the subscription's circuit reads it to tell
// an app that is down from an event that fails.
type Cause int

// The causes of an attempt's outcome.
const (
	// CauseAnswer: the app answered, and its answer decides: 2xx, a 4xx
	// that rejects the event, or a stream's ack, retry or reject.
	CauseAnswer Cause = iota
	// CauseUnavailable: the app answered 429 or 503: it cannot take events
	// now.
	CauseUnavailable
	// CauseFailure: another retryable failure of this attempt: 408, 3xx,
	// another 5xx, no answer within the timeout, or a request that could
	// not be made.
	CauseFailure
	// CauseUnreachable: no answer at all: connection refused or reset, a
	// DNS failure, a connection closed without an answer.
	CauseUnreachable
	// CauseCancelled: the caller gave up before an answer (shutdown, a
	// stream that ended): no attempt was made.
	CauseCancelled
)

// Outcome is the result of one delivery attempt.
type Outcome struct {
	Kind Kind
	// Cause is what the attempt's end says about the app.
	Cause Cause
	// Delay is, for Retry, how long to wait before the next attempt
	// (Retry-After or backoff with full jitter, capped at max_backoff).
	Delay time.Duration
	// Status is the app's HTTP status; 0 when there was no answer.
	Status int
	// Reason says in words what happened, e.g. "HTTP 503", "timeout after 10s",
	// "connection refused", "gave up after 8 attempts: HTTP 500".
	Reason string
	// Body is the start of the app's answer, at most 1 KiB.
	Body string
	// Took is how long the attempt took.
	Took time.Duration
}

// Delivery is one attempt to deliver one event.
type Delivery struct {
	Event *event.Event
	// Attempt is 1 for the first attempt.
	Attempt int
	// Route is the app's route for the event, chosen by a Dapr
	// subscription's rules; "" for other subscriptions.
	Route string
}

// deliverer makes delivery attempts: a Webhook, a Dapr app's, or a
// Session. Attempt reports what the app's answer means by the table of
// contract §5 (§9 for a Dapr app) without its last row: the attempt
// limit (limitStep) gives up after max_attempts, counting only the
// attempts that count (see circuit). Attempt must return when ctx ends (a
// Retry with Cause CauseCancelled and Delay 0).
type deliverer interface {
	Attempt(ctx context.Context, d Delivery) Outcome
}

// pusher is a deliverer that the sidecar pushes a subscription's events
// through on its own, a Webhook or a Dapr app's, guarded by a circuit.
// CloseIdleConnections is called once it will make no more attempts.
type pusher interface {
	deliverer
	CloseIdleConnections()
}

// Stats is a subscription's live state, as GET /v1/subscriptions shows it.
type Stats struct {
	Name string `json:"name"`
	// Topic is the subscription's topic pattern.
	Topic string `json:"topic"`
	// Endpoint is the webhook URL without userinfo or query; empty when
	// only gRPC streams receive the events.
	Endpoint string `json:"endpoint,omitempty"`
	// Streams counts the gRPC Subscribe streams open on it in this sidecar.
	Streams int `json:"streams"`
	// Pending counts the events stored and not yet settled: waiting for
	// delivery, or handed out (by any sidecar) and not yet answered, such
	// as those a crashed sidecar held until the broker redelivers them.
	Pending uint64 `json:"pending"`
	// InFlight counts this sidecar's deliveries in progress.
	InFlight int64 `json:"in_flight"`
	// Delivered, Retried and DeadLettered count this sidecar's outcomes
	// since it started.
	Delivered    uint64 `json:"delivered"`
	Retried      uint64 `json:"retried"`
	DeadLettered uint64 `json:"dead_lettered"`
	// State is StateDelivering, or StatePaused while this sidecar holds
	// the subscription's deliveries back: its webhook's circuit is open (the
	// app is down, or has not answered since the sidecar started), or, for a
	// subscription without a webhook, no stream is open on it.
	State string `json:"state"`
	// StateReason says, while paused, why: e.g. "app unreachable:
	// connection refused", "every event answered HTTP 503", "waiting for the
	// app's first answer". Empty while delivering.
	StateReason string `json:"state_reason,omitempty"`
}

// The states of a subscription (Stats.State).
const (
	StateDelivering = "delivering"
	StatePaused     = "paused"
)
