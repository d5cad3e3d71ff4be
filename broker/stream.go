package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/config"
)

// ensureStream creates the stream when it is missing; when it exists, it
// updates only the fields the sidecar owns (subjects, duplicate window,
// replicas) and keeps the rest of an operator's settings (limits, MaxAge,
// placement, ...).
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg config.Broker) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, newStreamConfig(cfg))
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("broker: create stream %q: %w", cfg.Stream, err)
		}
		// Another sidecar created it meanwhile: update it like any other.
		st, err = js.Stream(ctx, cfg.Stream)
	}
	if err != nil {
		return nil, fmt.Errorf("broker: look up stream %q: %w", cfg.Stream, err)
	}
	have := st.CachedInfo().Config
	want := ownedFields(have, cfg)
	if slices.Equal(have.Subjects, want.Subjects) && have.Duplicates == want.Duplicates &&
		have.Replicas == want.Replicas {
		return st, nil
	}
	st, err = js.UpdateStream(ctx, want)
	if err != nil {
		return nil, fmt.Errorf("broker: update stream %q: %w", cfg.Stream, err)
	}
	return st, nil
}

// newStreamConfig is the configuration of a stream the sidecar creates.
func newStreamConfig(cfg config.Broker) jetstream.StreamConfig {
	return ownedFields(jetstream.StreamConfig{
		Name:    cfg.Stream,
		Storage: jetstream.FileStorage,
	}, cfg)
}

// ownedFields returns sc with the fields the sidecar owns set from cfg. A
// zero duplicate window keeps the stream's (the server's default is 2m).
func ownedFields(sc jetstream.StreamConfig, cfg config.Broker) jetstream.StreamConfig {
	sc.Subjects = []string{cfg.SubjectPrefix + ".>"}
	sc.Replicas = max(cfg.Replicas, 1)
	if cfg.DuplicateWindow > 0 {
		sc.Duplicates = cfg.DuplicateWindow
	}
	return sc
}
