package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
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

// Run connects to the broker (starting the embedded server if none is
// configured), serves the HTTP API and delivers subscribed events until ctx
// ends, then shuts down in order: readiness false, in-flight requests
// finish, deliveries finish or go back to the broker, the connection
// drains, the embedded server stops.
func (m *Main) Run(ctx context.Context) error {
	shutdownTracing, err := tracing.Setup(ctx, m.Config.Tracing, m.Config.AppID, version, m.Log)
	if err != nil {
		return err
	}
	b, err := broker.Open(ctx, m.Config.Broker, "eventsidecar "+m.Config.AppID, m.Log)
	if err == nil {
		err = m.serve(ctx, b)
		err = errors.Join(err, b.Close())
	}
	flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingFlushTimeout)
	defer cancel()
	err = errors.Join(err, shutdownTracing(flush))
	m.Log.Info("stopped")
	return err
}

// tracingFlushTimeout bounds sending the last spans at shutdown.
const tracingFlushTimeout = 5 * time.Second

func (m *Main) serve(ctx context.Context, b *broker.Client) error {
	if u := b.EmbeddedURL(); u != "" {
		m.Log.Info("embedded broker listening", "url", u)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bc := m.Config.Broker
	seen, err := dedup.OpenDelivered(ctx, b.JetStream(), bc.Stream, bc.DuplicateWindow, bc.Replicas)
	if err != nil {
		return err
	}
	subs, err := egress.NewManager(ctx, m.Config.Subscriptions, b, seen, reg, m.Log)
	if err != nil {
		return err
	}
	ready := func(ctx context.Context) error { return errors.Join(b.Ready(ctx), subs.Ready(ctx)) }
	api, err := ingress.New(m.Config, b, subs, ready, reg, m.Log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", m.Config.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("listen http %s: %w", m.Config.HTTP.Listen, err)
	}
	var gln net.Listener
	if addr := m.Config.GRPC.Listen; addr != "" {
		if gln, err = net.Listen("tcp", addr); err != nil {
			ln.Close()
			return fmt.Errorf("listen grpc %s: %w", addr, err)
		}
		m.Log.Info("grpc listening", "addr", gln.Addr().String())
	}
	m.Log.Info("http listening", "addr", ln.Addr().String(), "broker", brokerName(bc), "subscriptions", len(m.Config.Subscriptions))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return api.Serve(gctx, ln) })
	if gln != nil {
		g.Go(func() error { return api.ServeGRPC(gctx, gln) })
	}
	g.Go(func() error { return subs.Run(gctx) })
	return g.Wait()
}

func brokerName(c config.Broker) string {
	if c.URL == "" {
		return "embedded:" + c.Embedded.StoreDir
	}
	hosts := strings.Split(c.URL, ",")
	for i, h := range hosts {
		if at := strings.LastIndex(h, "@"); at >= 0 {
			scheme, _, _ := strings.Cut(h, "://")
			hosts[i] = scheme + "://" + h[at+1:]
		}
	}
	return strings.Join(hosts, ",")
}
