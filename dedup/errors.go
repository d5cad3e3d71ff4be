package dedup

import "errors"

// ErrInvalidKey is returned for an Idempotency-Key that is neither an RFC
// 8941 string nor a bare run of printable ASCII.
var ErrInvalidKey = errors.New("dedup: invalid idempotency key")

// ErrNotReady is wrapped by the errors of a Delivered whose bucket is not
// in place yet.
var ErrNotReady = errors.New("dedup: the delivered set is not in place yet")
