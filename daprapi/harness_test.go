package daprapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/ingress"
	"github.com/eventsidecar/eventsidecar/internal/apitest"
	"github.com/eventsidecar/eventsidecar/server"
	"github.com/eventsidecar/eventsidecar/tracing/tracingtest"
	"github.com/eventsidecar/eventsidecar/wire"
)

func TestMain(m *testing.M) { tracingtest.Main(m) }

// harness is the Dapr API over a real publish path (ingress.Server) on a
// real JetStream server, served by package server as the sidecar serves
// it, over HTTP and gRPC.
type harness struct {
	t      *testing.T
	cfg    config.Config
	broker *broker.Client
	api    *server.Server
	srv    *httptest.Server
}

// testConfig is the configuration of the tests: app id "shop", an
// embedded broker in a temporary directory.
func testConfig(t *testing.T, mutate func(*config.Config)) config.Config {
	cfg := config.Default()
	cfg.AppID = "shop"
	cfg.Broker.Embedded.StoreDir = t.TempDir()
	if mutate != nil {
		mutate(&cfg)
	}
	return cfg
}

// newHarness serves the Dapr API on an embedded broker that is ready.
func newHarness(t *testing.T, mutate func(*config.Config)) *harness {
	t.Helper()
	cfg := testConfig(t, mutate)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, cfg.Broker, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return newHarnessOn(t, cfg, b)
}

// newHarnessOn serves the Dapr API of cfg over b, which need not be
// connected.
func newHarnessOn(t *testing.T, cfg config.Config, b *broker.Client) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	in, err := ingress.New(cfg, b, reg)
	if err != nil {
		t.Fatalf("ingress: %v", err)
	}
	outbound := func(context.Context) error {
		if !b.Conn().IsConnected() {
			return errors.New("not connected")
		}
		return nil
	}
	subs := func() []Subscription {
		return []Subscription{{PubSubName: "pubsub", Topic: "orders", Rules: []Rule{{Path: "/orders"}}, Type: "DECLARATIVE"}}
	}
	d := New(cfg, in, Status{Ready: b.Ready, Outbound: outbound, Subscriptions: subs})
	api := server.New(cfg.HTTP, server.Handlers{Publish: in, Dapr: d, RPC: in, Decoder: in, Services: []server.Service{d.Service()},
		Ready: b.Ready, Rejected: in.Rejected}, reg, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &harness{t: t, cfg: cfg, broker: b, api: api, srv: srv}
}

// do sends a request with the given headers ("Name: value" pairs).
func (h *harness) do(method, path, body string, hdrs ...string) *http.Response {
	h.t.Helper()
	return apitest.Do(h.t, h.srv.Client(), method, h.srv.URL+path, body, hdrs...)
}

func (h *harness) post(path, body string, hdrs ...string) *http.Response {
	h.t.Helper()
	return h.do(http.MethodPost, path, body, hdrs...)
}

// daprClient serves the gRPC API on a loopback port until the test ends
// and returns a Dapr client of it.
func (h *harness) daprClient() runtimev1.DaprClient {
	h.t.Helper()
	return runtimev1.NewDaprClient(apitest.ServeGRPC(h.t, h.api.ServeGRPC))
}

// stored returns every event in the stream, oldest first, with the topic
// each is stored on.
func (h *harness) stored() ([]event.Event, []string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := h.broker.JetStream().Stream(ctx, h.cfg.Broker.Stream)
	if err != nil {
		h.t.Fatalf("stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		h.t.Fatalf("stream info: %v", err)
	}
	var events []event.Event
	var subjects []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			h.t.Fatalf("get message %d: %v", seq, err)
		}
		ev, err := wire.DecodeNATS(raw.Header, raw.Data)
		if err != nil {
			h.t.Fatalf("decode message %d: %v", seq, err)
		}
		events, subjects = append(events, ev), append(subjects, raw.Subject)
	}
	return events, subjects
}

// errorBody is Dapr's error JSON.
type errorBody struct {
	ErrorCode     string `json:"errorCode"`
	Message       string `json:"message"`
	FailedEntries []struct {
		EntryID  string `json:"entryId"`
		EntryID2 string `json:"entryID"`
		Error    string `json:"error"`
	} `json:"failedEntries"`
}

// wantError requires a Dapr error answer with status and errorCode and
// returns its body.
func wantError(t *testing.T, resp *http.Response, status int, errorCode string) errorBody {
	t.Helper()
	raw, _ := io.ReadAll(resp.Body)
	var body errorBody
	if err := json.Unmarshal(raw, &body); err != nil || resp.StatusCode != status || body.ErrorCode != errorCode ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("answer %d %q %s, want %d application/json with errorCode %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw, status, errorCode)
	}
	return body
}

// wantNoContent requires a 204 with no body.
func wantNoContent(t *testing.T, resp *http.Response) {
	t.Helper()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNoContent || len(raw) != 0 {
		t.Fatalf("answer %d %s, want 204 without a body", resp.StatusCode, raw)
	}
}
