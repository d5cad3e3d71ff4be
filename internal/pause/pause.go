// Package pause waits for a while unless a context ends first: the pause
// between two tries of a loop that must stop at once when told to.
package pause

import (
	"context"
	"time"
)

// For waits for d or until ctx ends; it reports whether d passed.
func For(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
