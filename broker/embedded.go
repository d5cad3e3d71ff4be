package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/eventsidecar/eventsidecar/config"
)

const (
	// embeddedServerName names the embedded server in its logs and in
	// JetStream metadata.
	embeddedServerName = "eventsidecar"
	// embeddedStartTimeout bounds the embedded server's start (JetStream
	// recovers its store during it) when Open's context has no deadline.
	embeddedStartTimeout = 60 * time.Second
	// embeddedReadyTimeout bounds the wait for listeners once Start returned.
	embeddedReadyTimeout = 5 * time.Second
)

// embeddedOptions are the embedded server's options: JetStream with a file
// store, no signal handlers, no debug or trace logging, a payload limit
// large enough for an event of several MiB plus its headers, and no TCP
// listener unless listen is set.
func embeddedOptions(cfg config.Embedded) (*server.Options, error) {
	opts := &server.Options{
		ServerName: embeddedServerName,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		MaxPayload: server.MAX_PAYLOAD_MAX_SIZE,
		DontListen: cfg.Listen == "",
	}
	if cfg.Listen == "" {
		return opts, nil
	}
	host, portText, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("broker: embedded listen %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("broker: embedded listen %q: invalid port", cfg.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts.Host, opts.Port = host, port
	return opts, nil
}

// startEmbedded starts the embedded JetStream server and waits until it
// accepts connections. It returns the server and, when it listens on TCP,
// its client URL.
func startEmbedded(ctx context.Context, cfg config.Embedded, log *slog.Logger) (*server.Server, string, error) {
	opts, err := embeddedOptions(cfg)
	if err != nil {
		return nil, "", err
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, "", fmt.Errorf("broker: embedded server: %w", err)
	}
	s.SetLogger(serverLogger{log: log.With("component", "nats-server")}, false, false)
	if err := waitStarted(ctx, s); err != nil {
		stopEmbedded(s)
		return nil, "", err
	}
	if cfg.Listen == "" {
		return s, "", nil
	}
	return s, "nats://" + s.Addr().String(), nil
}

// waitStarted runs s.Start and waits for it, bounded by ctx (or
// embeddedStartTimeout without a deadline), then checks the server is
// ready with JetStream enabled.
func waitStarted(ctx context.Context, s *server.Server) error {
	ctx, cancel := context.WithTimeout(ctx, embeddedStartTimeout)
	defer cancel()
	started := make(chan struct{})
	go func() {
		defer close(started)
		s.Start()
	}()
	select {
	case <-started:
	case <-ctx.Done():
		return fmt.Errorf("broker: start embedded server: %w", ctx.Err())
	}
	if err := readyErr(s); err != nil {
		return fmt.Errorf("broker: start embedded server: %w", err)
	}
	return nil
}

func readyErr(s *server.Server) error {
	if !s.ReadyForConnections(embeddedReadyTimeout) {
		return fmt.Errorf("not ready for connections within %s (see the log)", embeddedReadyTimeout)
	}
	if !s.JetStreamEnabled() {
		return errors.New("JetStream did not start (see the log)")
	}
	return nil
}

// stopEmbedded shuts the server down and waits until it has stopped.
func stopEmbedded(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}
