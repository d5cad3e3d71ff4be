package pause

import (
	"context"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	t.Run("passes", func(t *testing.T) {
		start := time.Now()
		if !For(t.Context(), 20*time.Millisecond) {
			t.Fatal("For = false, want true: the context did not end")
		}
		if waited := time.Since(start); waited < 20*time.Millisecond {
			t.Errorf("For returned after %s, want at least 20ms", waited)
		}
	})
	t.Run("context already ended", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if For(ctx, time.Hour) {
			t.Fatal("For = true, want false: the context had ended")
		}
	})
	t.Run("context ends while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan bool)
		go func() { done <- For(ctx, time.Hour) }()
		cancel()
		if <-done {
			t.Fatal("For = true, want false: the context ended")
		}
	})
}
