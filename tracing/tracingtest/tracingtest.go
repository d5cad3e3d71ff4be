// Package tracingtest runs a package's tests with the tracing the daemon
// installs (no exporter), so that spans get real ids and trace context
// propagates as in production.
package tracingtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/tracing"
)

// Main sets up tracing, runs m's tests and exits with their code; call it
// from TestMain.
func Main(m *testing.M) {
	shutdown, err := tracing.Setup(context.Background(), config.Tracing{Exporter: "none"}, "test", "", slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = shutdown(context.Background())
	os.Exit(code)
}
