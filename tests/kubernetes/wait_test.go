package kubernetes_test

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// pollInterval is the pause between two checks of a condition.
const pollInterval = 100 * time.Millisecond

// errStop wraps an error after which polling is pointless (a process died).
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }
func (e errStop) Unwrap() error { return e.err }

// stopPolling makes cond's error end waitUntil at once.
func stopPolling(err error) error {
	return errStop{err}
}

// waitUntil checks cond every pollInterval until it returns nil, and returns
// an error naming what and cond's last error when within passes first or
// cond returns an error made by stopPolling.
func waitUntil(within time.Duration, what string, cond func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		var stop errStop
		if errors.As(err, &stop) {
			return fmt.Errorf("%s: %w", what, stop.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s; last: %w", what, within, err)
		}
		time.Sleep(pollInterval)
	}
}

// eventually is waitUntil for a test: it fails the test on an error.
func eventually(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	if err := waitUntil(within, what, cond); err != nil {
		t.Fatal(err)
	}
}
