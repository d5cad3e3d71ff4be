// Package graceful is the serve-then-shutdown of every server in the
// binary: serve until a context ends, then stop gracefully within a time
// limit.
package graceful

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Serve runs serve(ln) until ctx ends, then calls shutdown with a context
// that ends after timeout, for it to stop serve gracefully within that
// time. It returns nil once serve has returned nil or http.ErrServerClosed
// after the shutdown, else why serving (before ctx ended, or after) or
// shutting down failed.
func Serve(ctx context.Context, ln net.Listener, timeout time.Duration,
	serve func(net.Listener) error, shutdown func(context.Context) error) error {
	errc := make(chan error, 1)
	go func() { errc <- serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := shutdown(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}
