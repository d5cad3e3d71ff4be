package main

import (
	"cmp"
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
	"github.com/eventsidecar/eventsidecar/server"
	"github.com/eventsidecar/eventsidecar/tracing"
)

// Main is the sidecar daemon: the broker connection, the HTTP API and the
// deliveries of the subscriptions.
type Main struct {
	Config config.Config
	Log    *slog.Logger
}

// Overrides are the `run` flags that take precedence over the file; ""
// leaves the file's value.
type Overrides struct {
	LogLevel     string // log.level
	HealthListen string // http.health_listen
}

// NewMain loads the configuration at path ("" for the defaults), applies
// the overrides and sets up JSON logging on w at the configured level.
func NewMain(path string, o Overrides, w io.Writer) (*Main, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if o != (Overrides{}) {
		cfg.Log.Level = cmp.Or(o.LogLevel, cfg.Log.Level)
		cfg.HTTP.HealthListen = cmp.Or(o.HealthListen, cfg.HTTP.HealthListen)
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
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

// listeners are the bound listeners: the HTTP API's, and the gRPC API's and
// the health endpoints' when configured (else nil).
type listeners struct {
	http, grpc, health net.Listener
}

// close closes the listeners; those a server already closed stay closed.
func (l listeners) close() {
	for _, ln := range []net.Listener{l.http, l.grpc, l.health} {
		if ln != nil {
			ln.Close()
		}
	}
}

// listen binds the HTTP listener and, when configured, the gRPC and health
// ones.
func (m *Main) listen() (listeners, error) {
	var l listeners
	var err error
	if l.http, err = net.Listen("tcp", m.Config.HTTP.Listen); err != nil {
		return l, fmt.Errorf("listen http %s: %w", m.Config.HTTP.Listen, err)
	}
	if l.grpc, err = listenOptional("grpc", m.Config.GRPC.Listen); err == nil {
		l.health, err = listenOptional("health", m.Config.HTTP.HealthListen)
	}
	if err != nil {
		l.close()
		return listeners{}, err
	}
	return l, nil
}

// listenOptional binds addr, or returns a nil listener when addr is "".
func listenOptional(what, addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s %s: %w", what, addr, err)
	}
	return ln, nil
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
	srv, err := m.newServer(b, subs, reg)
	if err != nil {
		return err
	}
	if lns.grpc != nil {
		m.Log.Info("grpc listening", "addr", lns.grpc.Addr().String())
	}
	if lns.health != nil {
		m.Log.Info("health listening", "addr", lns.health.Addr().String())
	}
	m.Log.Info("http listening", "addr", lns.http.Addr().String(), "broker", brokerName(bc), "subscriptions", len(m.Config.Subscriptions))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx, lns.http) })
	if lns.grpc != nil {
		g.Go(func() error { return srv.ServeGRPC(gctx, lns.grpc) })
	}
	if lns.health != nil {
		g.Go(func() error { return srv.ServeHealth(gctx, lns.health) })
	}
	g.Go(func() error { return subs.Run(gctx) })
	return g.Wait()
}

// newServer is the API's server: the publish path over b, the admin API
// and Subscribe over subs, its metrics on reg.
func (m *Main) newServer(b *broker.Client, subs *egress.Manager, reg *prometheus.Registry) (*server.Server, error) {
	api, err := ingress.New(m.Config, b, reg)
	if err != nil {
		return nil, err
	}
	return server.New(m.Config.HTTP, server.Handlers{
		Publish:   api,
		Admin:     egress.NewAdmin(subs, m.Config.HTTP.ReadTimeout, m.Log),
		RPC:       api,
		Subscribe: egress.NewSubscriber(subs),
		Decoder:   api,
		Ready:     ready(b, subs),
		Rejected:  api.Rejected,
	}, reg, m.Log), nil
}

// ready is the sidecar's readiness: the broker's (connected, everything
// in place), then the subscriptions'.
func ready(b *broker.Client, subs *egress.Manager) server.ReadyFunc {
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
