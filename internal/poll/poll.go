// Package poll is a test helper: it waits for a condition that other
// goroutines or processes bring about, by polling it.
package poll

import (
	"testing"
	"time"
)

// interval is the pause between two checks.
const interval = 10 * time.Millisecond

// Until checks cond every 10ms until it holds, and fails the test with
// "<what>: not within <within>" when within passes first.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(interval)
	}
}
