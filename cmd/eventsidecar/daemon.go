package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dedup"
	"github.com/eventsidecar/eventsidecar/egress"
	"github.com/eventsidecar/eventsidecar/ingress"
	"github.com/eventsidecar/eventsidecar/tracing"
)

// Main is the sidecar daemon: the broker connection, the HTTP API and the
// deliveries of the subscriptions.
type Main struct {
	Config config.Config
	Log    *slog.Logger
}

// NewMain loads the configuration at path ("" for the defaults) and sets up
// JSON logging on w at the configured level.
func NewMain(path string, w io.Writer) (*Main, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return &Main{Config: cfg, Log: newLogger(cfg.Log.Level, w)}, nil
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(tracing.LogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})))
}

// Run binds the listeners, starts the broker connection (starting the
// embedded server if none is configured, else connecting in the
// background for as long as the broker cannot be reached), serves the HTTP
// API and delivers subscribed events until ctx ends, then shuts down in
// order: readiness false, in-flight requests finish, deliveries finish or
// go back to the broker, the connection drains, the embedded server stops.
func (m *Main) Run(ctx context.Context) error {
	shutdownTracing, err := tracing.Setup(ctx, m.Config.Tracing, m.Config.AppID, version, m.Log)
	if err != nil {
		return err
	}
	// The listeners come first, so that a busy port fails before anything
	// in the store is opened.
	lns, err := m.listen()
	if err == nil {
		err = m.run(ctx, lns)
	}
	flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingFlushTimeout)
	defer cancel()
	err = errors.Join(err, shutdownTracing(flush))
	m.Log.Info("stopped")
	return err
}

// tracingFlushTimeout bounds sending the last spans at shutdown.
const tracingFlushTimeout = 5 * time.Second

// run serves on lns over a new broker connection until ctx ends.
func (m *Main) run(ctx context.Context, lns listeners) error {
	defer lns.close()
	b, err := broker.Start(ctx, m.Config.Broker, "eventsidecar "+m.Config.AppID, m.Log)
	if err != nil {
		return err
	}
	return errors.Join(m.serve(ctx, b, lns), b.Close())
}

// listeners are the API's bound listeners; grpc is nil when gRPC is off.
type listeners struct {
	http, grpc net.Listener
}

// close closes the listeners; those a server already closed stay closed.
func (l listeners) close() {
	l.http.Close()
	if l.grpc != nil {
		l.grpc.Close()
	}
}

// listen binds the HTTP listener and, when configured, the gRPC one.
func (m *Main) listen() (listeners, error) {
	var l listeners
	var err error
	if l.http, err = net.Listen("tcp", m.Config.HTTP.Listen); err != nil {
		return l, fmt.Errorf("listen http %s: %w", m.Config.HTTP.Listen, err)
	}
	if addr := m.Config.GRPC.Listen; addr != "" {
		if l.grpc, err = net.Listen("tcp", addr); err != nil {
			l.http.Close()
			return l, fmt.Errorf("listen grpc %s: %w", addr, err)
		}
	}
	return l, nil
}

func (m *Main) serve(ctx context.Context, b *broker.Client, lns listeners) error {
	if u := b.EmbeddedURL(); u != "" {
		m.Log.Info("embedded broker listening", "url", u)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bc := m.Config.Broker
	seen, err := dedup.NewDelivered(b.JetStream(), bc.Stream, bc.DuplicateWindow, bc.Replicas)
	if err != nil {
		return err
	}
	b.Prepare("delivered set", seen.Ensure)
	subs, err := egress.NewManager(m.Config.Subscriptions, b, seen, reg, m.Log)
	if err != nil {
		return err
	}
	api, err := ingress.New(m.Config, b, subs, ready(b, subs), reg, m.Log)
	if err != nil {
		return err
	}
	if lns.grpc != nil {
		m.Log.Info("grpc listening", "addr", lns.grpc.Addr().String())
	}
	m.Log.Info("http listening", "addr", lns.http.Addr().String(), "broker", brokerName(bc), "subscriptions", len(m.Config.Subscriptions))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return api.Serve(gctx, lns.http) })
	if lns.grpc != nil {
		g.Go(func() error { return api.ServeGRPC(gctx, lns.grpc) })
	}
	g.Go(func() error { return subs.Run(gctx) })
	return g.Wait()
}

// ready is the sidecar's readiness: the broker's (connected, everything
// in place), then the subscriptions'.
func ready(b *broker.Client, subs *egress.Manager) ingress.ReadyFunc {
	return func(ctx context.Context) error {
		if err := b.Ready(ctx); err != nil {
			return err
		}
		return subs.Ready(ctx)
	}
}

func brokerName(c config.Broker) string {
	if c.URL == "" {
		return "embedded:" + c.Embedded.StoreDir
	}
	return broker.Redact(c.URL)
}
