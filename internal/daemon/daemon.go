// Package daemon is the sidecar daemon, importable: from one configuration
// it binds the listeners, starts the broker connection, wires ingress
// (with its Dapr API), egress and the servers, sets up tracing, and runs
// them all until its context ends, so the binary and in-process tests
// start it the same way.
package daemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/daprapi"
	"github.com/eventsidecar/eventsidecar/dedup"
	"github.com/eventsidecar/eventsidecar/egress"
	"github.com/eventsidecar/eventsidecar/ingress"
	"github.com/eventsidecar/eventsidecar/server"
	"github.com/eventsidecar/eventsidecar/tracing"
)

// ErrClosed is returned by Run called after Close, or a second time.
var ErrClosed = errors.New("daemon: closed")

// Main is the sidecar daemon: the broker connection, the HTTP and gRPC
// APIs and the deliveries of the subscriptions. Create it with New, then
// call Run once; call Close when Run may not have run. Its methods are
// safe for concurrent use.
type Main struct {
	// Version is the build's version, the service.version of the spans.
	// New sets "dev"; change it before Run.
	Version string

	cfg   config.Config
	log   *slog.Logger
	addrs Addrs
	dapr  *daprApp // nil without dapr.app_port

	mu  sync.Mutex
	lns *listeners // until Run takes them or Close closes them; nil after
}

// New validates cfg, reads the Dapr Subscription resources of
// dapr.resources_path, and binds its listeners (http.listen, and
// grpc.listen and http.health_listen when set), so that a bad resource or
// a busy port fails here, naming the file or the address, before anything
// in the store is opened. The daemon logs to log. The caller must call
// Run or Close.
func New(cfg config.Config, log *slog.Logger) (*Main, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	app, err := newDaprApp(cfg, log)
	if err != nil {
		return nil, err
	}
	lns, err := listen(cfg)
	if err != nil {
		return nil, err
	}
	return &Main{Version: "dev", cfg: cfg, log: log, addrs: lns.addrs(), dapr: app, lns: &lns}, nil
}

// Addrs returns the addresses the listeners are bound to, which tell the
// ports picked for addresses with port 0.
func (m *Main) Addrs() Addrs { return m.addrs }

// Run sets up tracing, starts the broker connection (starting the embedded
// server if none is configured, else connecting in the background for as
// long as the broker cannot be reached), serves the APIs and delivers
// subscribed events, the Dapr app's subscriptions included once it lists
// them, until ctx ends, then shuts down in order: readiness
// false, in-flight requests finish, deliveries finish or go back to the
// broker, the connection drains, the embedded server stops. It returns
// nil after a graceful stop, and ErrClosed after Close or a second call.
func (m *Main) Run(ctx context.Context) error {
	lns, err := m.take()
	if err != nil {
		return err
	}
	shutdownTracing, err := tracing.Setup(ctx, m.cfg.Tracing, m.cfg.AppID, m.Version, m.log)
	if err != nil {
		lns.close()
		return err
	}
	err = m.run(ctx, lns)
	flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingFlushTimeout)
	defer cancel()
	err = errors.Join(err, shutdownTracing(flush))
	m.log.Info("stopped")
	return err
}

// Close closes the listeners if Run has not taken them; then Run returns
// ErrClosed. It does not stop a Run in progress (end its context for
// that). Close is idempotent.
func (m *Main) Close() error {
	if lns, err := m.take(); err == nil {
		lns.close()
		return m.dapr.close()
	}
	return nil
}

// take hands the listeners over to its caller, once.
func (m *Main) take() (listeners, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lns == nil {
		return listeners{}, ErrClosed
	}
	lns := *m.lns
	m.lns = nil
	return lns, nil
}

// tracingFlushTimeout bounds sending the last spans at shutdown.
const tracingFlushTimeout = 5 * time.Second

// run serves on lns over a new broker connection until ctx ends.
func (m *Main) run(ctx context.Context, lns listeners) error {
	defer lns.close()
	b, err := broker.Start(ctx, m.cfg.Broker, "eventsidecar "+m.cfg.AppID, m.log)
	if err != nil {
		return err
	}
	return errors.Join(m.serve(ctx, b, lns), b.Close())
}

func (m *Main) serve(ctx context.Context, b *broker.Client, lns listeners) error {
	if u := b.EmbeddedURL(); u != "" {
		m.log.Info("embedded broker listening", "url", u)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bc := m.cfg.Broker
	seen, err := dedup.NewDelivered(b.JetStream(), bc.Stream, bc.DuplicateWindow, bc.Replicas)
	if err != nil {
		return err
	}
	b.Prepare("delivered set", seen.Ensure)
	subs, err := egress.NewManager(m.cfg.Subscriptions, b, seen, reg, m.log)
	if err != nil {
		return err
	}
	srv, err := m.newServer(b, subs, reg)
	if err != nil {
		return err
	}
	m.logListening(lns)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx, lns.http) })
	if lns.grpc != nil {
		g.Go(func() error { return srv.ServeGRPC(gctx, lns.grpc) })
	}
	if lns.health != nil {
		g.Go(func() error { return srv.ServeHealth(gctx, lns.health) })
	}
	g.Go(func() error { return subs.Run(gctx) })
	if m.dapr != nil {
		g.Go(func() error { return subs.RunDapr(gctx, m.dapr.app, m.dapr.declared) })
	}
	return errors.Join(g.Wait(), m.dapr.close())
}

// logListening says where the daemon serves; "http listening" comes last,
// as the sign that every listener is announced.
func (m *Main) logListening(lns listeners) {
	if lns.grpc != nil {
		m.log.Info("grpc listening", "addr", lns.grpc.Addr().String())
	}
	if lns.health != nil {
		m.log.Info("health listening", "addr", lns.health.Addr().String())
	}
	m.log.Info("http listening", "addr", lns.http.Addr().String(), "broker", brokerName(m.cfg.Broker), "subscriptions", len(m.cfg.Subscriptions))
}

// newServer is the API's server: the publish path over b with its Dapr
// dialect, the admin API and Subscribe over subs, its metrics on reg.
func (m *Main) newServer(b *broker.Client, subs *egress.Manager, reg *prometheus.Registry) (*server.Server, error) {
	api, err := ingress.New(m.cfg, b, reg)
	if err != nil {
		return nil, err
	}
	dapr := daprapi.New(m.cfg, api, daprapi.Status{Ready: ready(b, subs), Outbound: connected(b),
		Subscriptions: daprSubscriptions(subs)})
	return server.New(m.cfg.HTTP, server.Handlers{
		Publish:   api,
		Admin:     egress.NewAdmin(subs, m.cfg.HTTP.ReadTimeout, m.log),
		Dapr:      dapr,
		RPC:       api,
		Subscribe: egress.NewSubscriber(subs),
		Services:  []server.Service{dapr.Service()},
		Decoder:   api,
		Ready:     ready(b, subs),
		Rejected:  api.Rejected,
	}, reg, m.log), nil
}

// connected is nil while the broker connection is up (the Dapr API's
// outbound health).
func connected(b *broker.Client) func(context.Context) error {
	return func(context.Context) error {
		if !b.Conn().IsConnected() {
			return errors.New("broker: not connected")
		}
		return nil
	}
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
