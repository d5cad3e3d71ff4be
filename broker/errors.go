package broker

import "errors"

// ErrOverloaded is wrapped by a Receipt's Err when too many events are
// already waiting for the broker's acknowledgement (HTTP 429).
var ErrOverloaded = errors.New("broker: too many events waiting for the broker")

// ErrUnavailable is wrapped by a Receipt's Err when the broker could not be
// reached or did not acknowledge in time (HTTP 503).
var ErrUnavailable = errors.New("broker: unavailable")
