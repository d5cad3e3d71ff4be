package egress

import "errors"

// ErrUnknownSubscription is returned for a subscription name that is not
// configured.
var ErrUnknownSubscription = errors.New("egress: unknown subscription")

// ErrAppNotUp is returned while a Dapr app cannot be reached to list its
// subscriptions (connection refused, say): it is not up yet.
var ErrAppNotUp = errors.New("egress: the Dapr app is not up yet")

// ErrConflict is returned when a stream's ad-hoc subscription clashes with
// a configured subscription or with an open ad-hoc one of the same name,
// and when a Dapr subscription's name is taken.
var ErrConflict = errors.New("egress: subscription conflict")

var (
	// ErrSessionClosed is returned by Next once the session has ended.
	ErrSessionClosed = errors.New("egress: session closed")
	// ErrSlowReader ends a session whose app did not take a delivery within
	// the subscription's timeout.
	ErrSlowReader = errors.New("egress: the app did not take a delivery within the subscription's timeout")
	// ErrUnknownDelivery is returned by Answer for a delivery id the session
	// never handed out.
	ErrUnknownDelivery = errors.New("egress: unknown delivery id")
)
