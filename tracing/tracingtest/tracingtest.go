// Package tracingtest runs a package's tests with the tracing the daemon
// installs: with no exporter (Main), so that spans get real ids and trace
// context propagates as in production, or as with an exporter
// (MainRecording), so that tests can read the spans recorded.
package tracingtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

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

// MainRecording runs m's tests with the tracing the daemon installs when it
// has an exporter: the SDK's TracerProvider, sampling as the daemon does,
// and the W3C propagators, but no exporter; a test reads the spans through
// a span processor it registers on the provider. Call it from TestMain.
func MainRecording(m *testing.M) {
	tp := sdktrace.NewTracerProvider()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	code := m.Run()
	_ = tp.Shutdown(context.Background())
	os.Exit(code)
}
