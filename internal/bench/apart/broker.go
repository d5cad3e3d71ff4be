package apart

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/bench"
)

// storeTimeout bounds storing a delivery row's backlog.
const storeTimeout = 5 * time.Minute

// openStream creates the sidecar's events stream on the broker at url,
// as the sidecar would, and stores backlog events in it as the sidecar
// stores them, through the sidecar's broker client.
func openStream(ctx context.Context, url string, backlog int) error {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	cfg := config.Default().Broker
	cfg.URL = url
	b, err := broker.Open(ctx, cfg, "eventsidecar-bench", slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("apart: %w", err)
	}
	err = bench.Store(ctx, b, eventData, backlog)
	return errors.Join(err, b.Close())
}

// storedEvents is the number of messages in the events stream of the
// broker at url.
func storedEvents(ctx context.Context, url string) (int64, error) {
	nc, err := nats.Connect(url, nats.Name("eventsidecar-bench"))
	if err != nil {
		return 0, fmt.Errorf("apart: connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, fmt.Errorf("apart: jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	name := config.Default().Broker.Stream
	st, err := js.Stream(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("apart: stream %q: %w", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("apart: stream %q info: %w", name, err)
	}
	return int64(info.State.Msgs), nil
}
