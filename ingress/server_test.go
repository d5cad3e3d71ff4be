package ingress

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
)

// harness is an ingress server over a real embedded JetStream server.
type harness struct {
	t      *testing.T
	cfg    config.Config
	broker *broker.Client
	log    *slog.Logger
	api    *Server
	srv    *httptest.Server
	// grpcAddr is where serveGRPC serves.
	grpcAddr string
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

func newHarnessOn(t *testing.T, cfg config.Config, b *broker.Client, pub Publisher, admin Mounter, sub Subscriber, log *slog.Logger) *harness {
	t.Helper()
	api, err := New(cfg, pub, admin, sub, b.Ready, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
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
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for _, kv := range hdrs {
		k, v, _ := strings.Cut(kv, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	h.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (h *harness) get(path string) *http.Response {
	h.t.Helper()
	resp, err := h.srv.Client().Get(h.srv.URL + path)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	h.t.Cleanup(func() { resp.Body.Close() })
	return resp
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

func decodeJSON[T any](t *testing.T, resp *http.Response) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("decode %s answer: %v", resp.Status, err)
	}
	return v
}

func wantStatus(t *testing.T, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, want, body)
	}
}

func TestHealthAndReady(t *testing.T) {
	h := newHarness(t, nil)
	wantStatus(t, h.get("/healthz"), http.StatusOK)
	resp := h.get("/readyz")
	wantStatus(t, resp, http.StatusOK)
	if got := decodeJSON[map[string]any](t, resp); got["ready"] != true {
		t.Errorf("readyz = %v, want ready true", got)
	}
	h.api.Stopping()
	resp = h.get("/readyz")
	wantStatus(t, resp, http.StatusServiceUnavailable)
	if got := decodeJSON[map[string]any](t, resp); got["reason"] != "shutting down" {
		t.Errorf("readyz while stopping = %v, want reason shutting down", got)
	}
}

func TestReadyFalseWhenBrokerClosed(t *testing.T) {
	h := newHarness(t, nil)
	if err := h.broker.Close(); err != nil {
		t.Fatal(err)
	}
	resp := h.get("/readyz")
	wantStatus(t, resp, http.StatusServiceUnavailable)
	if got := decodeJSON[map[string]any](t, resp); got["reason"] == "" || got["ready"] != false {
		t.Errorf("readyz = %v, want ready false with a reason", got)
	}
}

func TestUnknownPathAndMethodAreProblems(t *testing.T) {
	h := newHarness(t, nil)
	resp := h.get("/nope")
	wantStatus(t, resp, http.StatusNotFound)
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q", ct)
	}
	resp = h.get("/v1/publish/orders.created")
	wantStatus(t, resp, http.StatusMethodNotAllowed)
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("405 Content-Type = %q", ct)
	}
}

func TestToken(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.HTTP.APIToken = "s3cret" })
	event := []string{"ce-specversion: 1.0", "ce-id: 1", "ce-source: /s", "ce-type: t"}
	tests := []struct {
		name  string
		auth  []string
		want  int
		wantN uint64
	}{
		{"missing", nil, http.StatusUnauthorized, 0},
		{"wrong", []string{"Authorization: Bearer nope"}, http.StatusUnauthorized, 0},
		{"wrong scheme", []string{"Authorization: Basic s3cret"}, http.StatusUnauthorized, 0},
		{"right", []string{"Authorization: Bearer s3cret"}, http.StatusOK, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.post("/v1/publish/a", "x", append(event, tt.auth...)...)
			wantStatus(t, resp, tt.want)
			if tt.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if n := h.stored(); n != tt.wantN {
				t.Errorf("stored = %d, want %d", n, tt.wantN)
			}
		})
	}
	wantStatus(t, h.get("/healthz"), http.StatusOK)
}
