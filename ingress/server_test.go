package ingress

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/apitest"
	"github.com/eventsidecar/eventsidecar/server"
)

// harness is the publish path over a real embedded JetStream server,
// served as the sidecar serves it.
type harness struct {
	t      *testing.T
	cfg    config.Config
	broker *broker.Client
	log    *slog.Logger
	// api is the server of package server over the publish path.
	api *server.Server
	srv *httptest.Server
}

func newHarness(t *testing.T, mutate func(*config.Config)) *harness {
	t.Helper()
	cfg := config.Default()
	cfg.AppID = "test"
	cfg.Broker.Embedded.StoreDir = t.TempDir()
	if mutate != nil {
		mutate(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, cfg.Broker, "test", log)
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return newHarnessOn(t, cfg, b, b, nil, nil, log)
}

func newHarnessOn(t *testing.T, cfg config.Config, b *broker.Client, pub Publisher, admin server.Mounter, sub server.Subscriber, log *slog.Logger) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	in, err := New(cfg, pub, reg)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	api := server.New(cfg.HTTP, server.Handlers{Publish: in, Admin: admin, RPC: in, Subscribe: sub, Decoder: in,
		Ready: b.Ready, Rejected: in.Rejected}, reg, log)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &harness{t: t, cfg: cfg, broker: b, log: log, api: api, srv: srv}
}

// post sends body to path with the given headers ("Name: value" pairs).
func (h *harness) post(path, body string, hdrs ...string) *http.Response {
	h.t.Helper()
	return h.do(http.MethodPost, path, body, hdrs...)
}

// do sends a request with the given headers ("Name: value" pairs).
func (h *harness) do(method, path, body string, hdrs ...string) *http.Response {
	h.t.Helper()
	return apitest.Do(h.t, h.srv.Client(), method, h.srv.URL+path, body, hdrs...)
}

func (h *harness) get(path string) *http.Response {
	h.t.Helper()
	return h.do(http.MethodGet, path, "")
}

// rawMsg returns the stored message at seq.
func (h *harness) rawMsg(seq uint64) *jetstream.RawStreamMsg {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := h.broker.JetStream().Stream(ctx, h.cfg.Broker.Stream)
	if err != nil {
		h.t.Fatal(err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if err != nil {
		h.t.Fatalf("get message %d: %v", seq, err)
	}
	return raw
}

// stored is the number of messages in the stream.
func (h *harness) stored() uint64 {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := h.broker.JetStream().Stream(ctx, h.cfg.Broker.Stream)
	if err != nil {
		h.t.Fatalf("stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		h.t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}
