package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/ingress"
)

// Main is the sidecar daemon: the broker connection and the HTTP API.
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
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// Run connects to the broker (starting the embedded server if none is
// configured), serves the HTTP API until ctx ends, then shuts down in order:
// readiness false, in-flight requests finish, the connection drains, the
// embedded server stops.
func (m *Main) Run(ctx context.Context) error {
	b, err := broker.Open(ctx, m.Config.Broker, "eventsidecar "+m.Config.AppID, m.Log)
	if err != nil {
		return err
	}
	err = m.serve(ctx, b)
	err = errors.Join(err, b.Close())
	m.Log.Info("stopped")
	return err
}

func (m *Main) serve(ctx context.Context, b *broker.Client) error {
	if u := b.EmbeddedURL(); u != "" {
		m.Log.Info("embedded broker listening", "url", u)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	api, err := ingress.New(m.Config, b, b.Ready, reg, m.Log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", m.Config.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("listen http %s: %w", m.Config.HTTP.Listen, err)
	}
	m.Log.Info("http listening", "addr", ln.Addr().String(), "broker", brokerName(m.Config.Broker))
	return api.Serve(ctx, ln)
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
