package daprapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"google.golang.org/grpc/codes"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/apitest"
	"github.com/eventsidecar/eventsidecar/internal/poll"
)

func TestHealthAndMetadata(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.Dapr.PubSubNames = []string{"pubsub", "other"}
		c.Dapr.AppPort = 3000
	})
	wantNoContent(t, h.do("GET", "/v1.0/healthz", ""))
	wantNoContent(t, h.do("GET", "/v1.0/healthz?appid=shop", ""))
	wantNoContent(t, h.do("GET", "/v1.0/healthz/outbound", ""))
	wantError(t, h.do("GET", "/v1.0/healthz?appid=other", ""), http.StatusInternalServerError, "ERR_HEALTH_APPID_NOT_MATCH")

	resp := h.do("GET", "/v1.0/metadata", "")
	apitest.WantStatus(t, resp, http.StatusOK)
	body, _ := io.ReadAll(resp.Body)
	want := `{"id":"shop","components":[{"name":"pubsub","type":"pubsub.jetstream","version":"v1"},` +
		`{"name":"other","type":"pubsub.jetstream","version":"v1"}],` +
		`"subscriptions":[{"pubsubname":"pubsub","topic":"orders","rules":[{"path":"/orders"}],"deadLetterTopic":"","type":"DECLARATIVE"}],` +
		`"appConnectionProperties":{"port":3000,"protocol":"http","channelAddress":"127.0.0.1"}}` + "\n"
	if string(body) != want || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("metadata = %s\nwant       %s", body, want)
	}
}

// freePort is a loopback port nothing listens on (yet).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// natsServer starts a JetStream server on port with its store in a
// temporary directory.
func natsServer(t *testing.T, port int) {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
}

// Before the broker is reached, metadata answers at once (the JavaScript
// SDK waits for it), health says why not and publishes answer 503 with
// Retry-After; then all turn to success.
func TestBeforeTheBrokerConnects(t *testing.T) {
	port := freePort(t)
	cfg := testConfig(t, func(c *config.Config) { c.Broker.URL = fmt.Sprintf("nats://127.0.0.1:%d", port) })
	b, err := broker.Start(context.Background(), cfg.Broker, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	h := newHarnessOn(t, cfg, b)
	c := h.daprClient()

	apitest.WantStatus(t, h.do("GET", "/v1.0/metadata", ""), http.StatusOK)
	wantError(t, h.do("GET", "/v1.0/healthz", ""), http.StatusInternalServerError, "ERR_HEALTH_NOT_READY")
	wantError(t, h.do("GET", "/v1.0/healthz/outbound", ""), http.StatusInternalServerError, "ERR_OUTBOUND_HEALTH_NOT_READY")
	resp := h.post("/v1.0/publish/pubsub/orders", "x")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	wantError(t, resp, http.StatusServiceUnavailable, "ERR_PUBSUB_PUBLISH_MESSAGE")
	all := wantError(t, h.post(bulkPath, textEntries(2)), http.StatusServiceUnavailable, "ERR_PUBSUB_PUBLISH_MESSAGE")
	if len(all.FailedEntries) != 2 {
		t.Errorf("failedEntries = %+v, want both", all.FailedEntries)
	}
	req := &runtimev1.PublishEventRequest{PubsubName: "pubsub", Topic: "orders", Data: []byte("x")}
	_, err = c.PublishEvent(rpcCtx(t), req)
	wantReason(t, err, codes.Unavailable, "UNAVAILABLE")

	natsServer(t, port)
	poll.Until(t, 30*time.Second, "healthz once the broker is up", func() bool {
		return h.do("GET", "/v1.0/healthz", "").StatusCode == http.StatusNoContent
	})
	wantNoContent(t, h.do("GET", "/v1.0/healthz/outbound", ""))
	wantNoContent(t, h.post("/v1.0/publish/pubsub/orders", "x"))
	if _, err := c.PublishEvent(rpcCtx(t), req); err != nil {
		t.Errorf("PublishEvent once the broker is up: %v", err)
	}
}

func TestHTTPToken(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.HTTP.APIToken = "s3cret" })
	refused := [][]string{nil, {"dapr-api-token: wrong"}, {"Authorization: Bearer wrong"}, {"dapr-api-token: wrong", "Authorization: Bearer s3cret"}}
	for _, hdrs := range refused {
		for _, path := range []string{"/v1.0/publish/pubsub/orders", bulkPath, "/v1.0/state/x"} {
			resp := h.post(path, "[]", hdrs...)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || string(body) != "invalid api token\n" {
				t.Errorf("POST %s with %v = %d %q %q, want 401 text/plain invalid api token", path, hdrs, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		}
	}
	if resp := h.do("GET", "/v1.0/metadata", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("metadata without a token = %d, want 401", resp.StatusCode)
	}
	wantNoContent(t, h.do("GET", "/v1.0/healthz", ""))
	wantNoContent(t, h.do("GET", "/v1.0/healthz/outbound", ""))
	wantNoContent(t, h.post("/v1.0/publish/pubsub/orders", "x", "dapr-api-token: s3cret"))
	wantNoContent(t, h.post("/v1.0/publish/pubsub/orders", "x", "Authorization: Bearer s3cret"))
	apitest.WantStatus(t, h.do("GET", "/v1.0/metadata", "", "dapr-api-token: s3cret"), http.StatusOK)
	if resp := h.post("/v1/publish/orders", "x", "dapr-api-token: s3cret"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the native API with dapr-api-token = %d, want 401 (it takes Bearer only)", resp.StatusCode)
	}
}
