package tests

import (
	"net/http"
	"testing"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc/metadata"
)

// TestDaprGRPCPublish publishes through the real binary's gRPC Dapr
// service under a pub/sub name of dapr.pubsub_names (a dapr-api-token
// without a configured token is ignored) and checks the Dapr HTTP
// endpoints it serves beside its own.
func TestDaprGRPCPublish(t *testing.T) {
	sc := startSidecar(t, withGRPC(embeddedConfig(t.TempDir(), "dapr:\n  pubsub_names: [orders-bus]\n")))
	dapr := runtimev1.NewDaprClient(sc.dial())
	ctx := metadata.AppendToOutgoingContext(t.Context(), "dapr-api-token", "unused")
	if _, err := dapr.PublishEvent(ctx, &runtimev1.PublishEventRequest{PubsubName: "orders-bus", Topic: "orders",
		Data: []byte(`{"orderId":1}`), DataContentType: "application/json"}); err != nil {
		t.Fatalf("PublishEvent: %v", err)
	}
	resp, err := dapr.BulkPublishEvent(ctx, &runtimev1.BulkPublishRequest{PubsubName: "orders-bus", Topic: "orders",
		Entries: []*runtimev1.BulkPublishRequestEntry{{EntryId: "a", Event: []byte("two"), ContentType: "text/plain"}}})
	if err != nil || len(resp.GetFailedEntries()) != 0 {
		t.Fatalf("BulkPublishEvent = %v, %v", resp, err)
	}
	events := sc.storedEvents()
	if len(events) != 2 || string(events[0].Data()) != `{"orderId":1}` || string(events[1].Data()) != "two" || events[0].Source() != "e2e" {
		t.Errorf("stored %v", events)
	}
	if code, body := sc.get("/v1.0/healthz"); code != http.StatusNoContent {
		t.Errorf("GET /v1.0/healthz = %d %s, want 204", code, body)
	}
	if code, body := sc.get("/v1.0/metadata"); code != http.StatusOK {
		t.Errorf("GET /v1.0/metadata = %d %s, want 200", code, body)
	}
}
