package daprapi

import (
	"context"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/dapr/dapr/pkg/proto/common/v1"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/apitest"
	"github.com/eventsidecar/eventsidecar/wire"
)

// rpcCtx bounds an RPC and sends the metadata pairs kv.
func rpcCtx(t *testing.T, kv ...string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// wantReason requires a gRPC error of code whose ErrorInfo has reason.
func wantReason(t *testing.T, err error, code codes.Code, reason string) *status.Status {
	t.Helper()
	st := apitest.WantCode(t, err, code)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == reason {
			return st
		}
	}
	t.Errorf("status %v has no ErrorInfo with reason %s", st.Proto(), reason)
	return st
}

func TestGRPCPublishEvent(t *testing.T) {
	h := newHarness(t, nil)
	c := h.daprClient()
	reqs := []*runtimev1.PublishEventRequest{
		{PubsubName: "pubsub", Topic: "orders", Data: []byte(`{"orderId":1}`), DataContentType: "application/json"},
		{PubsubName: "pubsub", Topic: "orders", Data: []byte("hello")},
		{PubsubName: "pubsub", Topic: "orders", Data: []byte(`{"orderId":2}`), DataContentType: "application/json", Metadata: map[string]string{"rawPayload": "true"}},
		{PubsubName: "pubsub", Topic: "orders", Data: []byte("once"), Metadata: map[string]string{"cloudevent.id": "o-1"}},
		{PubsubName: "pubsub", Topic: "orders", Data: []byte("once"), Metadata: map[string]string{"cloudevent.id": "o-1"}},
	}
	for _, req := range reqs {
		if _, err := c.PublishEvent(rpcCtx(t), req); err != nil {
			t.Fatalf("PublishEvent(%v): %v", req, err)
		}
	}
	events, _ := h.stored()
	if len(events) != 4 {
		t.Fatalf("%d events stored, want 4 (the resend is a duplicate)", len(events))
	}
	wantEvent(t, events[0], stored{source: "shop", typ: "com.dapr.event.sent", contentType: "application/json", data: `{"orderId":1}`})
	wantEvent(t, events[1], stored{source: "shop", typ: "com.dapr.event.sent", contentType: "text/plain", data: "hello"})
	wantEvent(t, events[2], stored{source: "/eventsidecar/shop", typ: wire.RawType, contentType: "application/json", data: `{"orderId":2}`})
	wantEvent(t, events[3], stored{id: "o-1", source: "shop", typ: "com.dapr.event.sent", contentType: "text/plain", data: "once"})
}

func TestGRPCPublishErrors(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.Scopes.Publish = []string{"orders"}
		c.HTTP.MaxEventBytes = 64
	})
	c := h.daprClient()
	tests := []struct {
		name   string
		req    *runtimev1.PublishEventRequest
		code   codes.Code
		reason string
	}{
		{"pubsub empty", &runtimev1.PublishEventRequest{Topic: "orders"}, codes.InvalidArgument, "DAPR_PUBSUB_NAME_EMPTY"},
		{"pubsub unknown", &runtimev1.PublishEventRequest{PubsubName: "kafka", Topic: "orders"}, codes.InvalidArgument, "DAPR_PUBSUB_NOT_FOUND"},
		{"topic empty", &runtimev1.PublishEventRequest{PubsubName: "pubsub"}, codes.InvalidArgument, "DAPR_PUBSUB_TOPIC_NAME_EMPTY"},
		{"topic malformed", &runtimev1.PublishEventRequest{PubsubName: "pubsub", Topic: "a/b"}, codes.InvalidArgument, "INVALID_TOPIC"},
		{"bad rawPayload", &runtimev1.PublishEventRequest{PubsubName: "pubsub", Topic: "orders", Metadata: map[string]string{"rawPayload": "x"}},
			codes.InvalidArgument, "DAPR_PUBSUB_METADATA_DESERIALIZATION"},
		{"invalid cloudevent", &runtimev1.PublishEventRequest{PubsubName: "pubsub", Topic: "orders", Data: []byte(`{"specversion":"1.0"}`),
			DataContentType: "application/cloudevents+json"}, codes.InvalidArgument, "INVALID"},
		{"forbidden", &runtimev1.PublishEventRequest{PubsubName: "pubsub", Topic: "audit", Data: []byte("x")}, codes.PermissionDenied, "DAPR_PUBSUB_FORBIDDEN"},
		{"too large", &runtimev1.PublishEventRequest{PubsubName: "pubsub", Topic: "orders", Data: []byte(strings.Repeat("x", 65))},
			codes.ResourceExhausted, "TOO_LARGE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.PublishEvent(rpcCtx(t), tt.req)
			wantReason(t, err, tt.code, tt.reason)
		})
	}
	_, err := c.GetState(rpcCtx(t), &runtimev1.GetStateRequest{StoreName: "s", Key: "k"})
	apitest.WantCode(t, err, codes.Unimplemented)
	_, err = c.InvokeService(rpcCtx(t), &runtimev1.InvokeServiceRequest{Id: "a", Message: &commonv1.InvokeRequest{Method: "m"}})
	apitest.WantCode(t, err, codes.Unimplemented)
}

func TestGRPCBulkPublish(t *testing.T) {
	h := newHarness(t, nil)
	c := h.daprClient()
	req := &runtimev1.BulkPublishRequest{PubsubName: "pubsub", Topic: "orders", Metadata: map[string]string{"cloudevent.type": "bulk.t"},
		Entries: []*runtimev1.BulkPublishRequestEntry{
			{EntryId: "a", Event: []byte(`{"n":1}`), ContentType: "application/json", Metadata: map[string]string{"cloudevent.id": "a-1"}},
			{EntryId: "b", Event: []byte("two"), ContentType: "text/plain"},
		}}
	for _, call := range []func(context.Context, *runtimev1.BulkPublishRequest) (*runtimev1.BulkPublishResponse, error){
		func(ctx context.Context, r *runtimev1.BulkPublishRequest) (*runtimev1.BulkPublishResponse, error) {
			return c.BulkPublishEvent(ctx, r)
		},
		func(ctx context.Context, r *runtimev1.BulkPublishRequest) (*runtimev1.BulkPublishResponse, error) {
			return c.BulkPublishEventAlpha1(ctx, r)
		},
	} {
		resp, err := call(rpcCtx(t), req)
		if err != nil || len(resp.GetFailedEntries()) != 0 {
			t.Fatalf("bulk publish = %v, %v; want no failed entries", resp, err)
		}
	}
	events, _ := h.stored()
	if len(events) != 3 {
		t.Fatalf("%d events stored, want 3 (entry a's resend is a duplicate)", len(events))
	}
	wantEvent(t, events[0], stored{id: "a-1", source: "shop", typ: "bulk.t", contentType: "application/json", data: `{"n":1}`})
	wantEvent(t, events[1], stored{source: "shop", typ: "com.dapr.event.sent", contentType: "text/plain", data: "two"})

	partial := &runtimev1.BulkPublishRequest{PubsubName: "pubsub", Topic: "orders", Entries: []*runtimev1.BulkPublishRequestEntry{
		{EntryId: "new", Event: []byte("n"), ContentType: "text/plain"},
		{EntryId: "reused", Event: []byte("other"), ContentType: "application/json", Metadata: map[string]string{"cloudevent.id": "a-1"}},
	}}
	resp, err := c.BulkPublishEvent(rpcCtx(t), partial)
	if err != nil || len(resp.GetFailedEntries()) != 1 || resp.GetFailedEntries()[0].GetEntryId() != "reused" {
		t.Fatalf("partial failure = %v, %v; want OK with only \"reused\" failed", resp, err)
	}
	_, err = c.BulkPublishEvent(rpcCtx(t), &runtimev1.BulkPublishRequest{PubsubName: "pubsub", Topic: "orders",
		Entries: []*runtimev1.BulkPublishRequestEntry{{EntryId: "a"}, {EntryId: "a"}}})
	wantReason(t, err, codes.InvalidArgument, "DAPR_PUBSUB_MARSHAL_EVENTS")
}

func TestGRPCBulkOverCapacity(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Broker.MaxPending = 1 })
	_, err := h.daprClient().BulkPublishEvent(rpcCtx(t), &runtimev1.BulkPublishRequest{PubsubName: "pubsub", Topic: "orders",
		Entries: []*runtimev1.BulkPublishRequestEntry{{EntryId: "a", Event: []byte("x")}, {EntryId: "b", Event: []byte("y")}}})
	st := wantReason(t, err, codes.ResourceExhausted, "OVERLOADED")
	var retry bool
	for _, d := range st.Details() {
		_, isRetry := d.(*errdetails.RetryInfo)
		retry = retry || isRetry
	}
	if !retry {
		t.Error("no RetryInfo")
	}
}

func TestGRPCToken(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.HTTP.APIToken = "s3cret" })
	c := h.daprClient()
	req := &runtimev1.PublishEventRequest{PubsubName: "pubsub", Topic: "orders", Data: []byte("x")}
	for _, md := range [][]string{nil, {"dapr-api-token", "wrong"}, {"authorization", "Bearer wrong"}, {"dapr-api-token", "wrong", "authorization", "Bearer s3cret"}} {
		_, err := c.PublishEvent(rpcCtx(t, md...), req)
		if st := apitest.WantCode(t, err, codes.Unauthenticated); st.Message() != "invalid api token" {
			t.Errorf("message = %q", st.Message())
		}
	}
	for _, md := range [][]string{{"dapr-api-token", "s3cret"}, {"authorization", "Bearer s3cret"}} {
		if _, err := c.PublishEvent(rpcCtx(t, md...), req); err != nil {
			t.Errorf("PublishEvent with %v: %v", md, err)
		}
	}
}
