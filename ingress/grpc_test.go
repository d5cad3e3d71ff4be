package ingress

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/apitest"
)

// serveGRPC serves h.api's gRPC API on a loopback port until the test ends
// and returns a connection to it.
func (h *harness) serveGRPC() *grpc.ClientConn {
	h.t.Helper()
	return apitest.ServeGRPC(h.t, h.api.ServeGRPC)
}

func rpcCtx(t *testing.T, kv ...string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// pbEvent is a valid protobuf event with id.
func pbEvent(id string) *pb.CloudEvent {
	return &pb.CloudEvent{Id: id, Source: "/shop", SpecVersion: "1.0", Type: "order.created",
		Attributes: map[string]*pb.CloudEventAttributeValue{"datacontenttype": ceString("application/json")},
		Data:       &pb.CloudEvent_BinaryData{BinaryData: []byte(`{"n":1}`)}}
}

// storedMsg returns the stored message's headers and data at seq.
func (h *harness) storedMsg(seq uint64) (http.Header, []byte) {
	h.t.Helper()
	raw := h.rawMsg(seq)
	return http.Header(raw.Header), raw.Data
}

func TestGRPCPublishStoresWhatHTTPStores(t *testing.T) {
	h := newHarness(t, nil)
	client := eventsidecarv1.NewEventSidecarClient(h.serveGRPC())
	resp := h.post("/v1/publish/a", `{"n":1}`, "ce-specversion: 1.0", "ce-id: same-1", "ce-source: https://example.com/shop",
		"ce-type: order.created", "ce-subject: Euro%20%E2%82%AC", "ce-time: 2024-05-01T12:00:00Z", "ce-partitionkey: k1",
		"Content-Type: application/json")
	apitest.WantStatus(t, resp, http.StatusOK)
	httpSeq := apitest.DecodeJSON[Result](t, resp).Sequence
	ev := &pb.CloudEvent{Id: "same-1", Source: "https://example.com/shop", SpecVersion: "1.0", Type: "order.created",
		Attributes: map[string]*pb.CloudEventAttributeValue{
			"datacontenttype": ceString("application/json"),
			"subject":         ceString("Euro €"),
			"partitionkey":    ceString("k1"),
			"time": {Attr: &pb.CloudEventAttributeValue_CeTimestamp{
				CeTimestamp: timestamppb.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))}},
		},
		Data: &pb.CloudEvent_BinaryData{BinaryData: []byte(`{"n":1}`)}}
	got, err := client.Publish(rpcCtx(t), &eventsidecarv1.PublishRequest{Topic: "b", Event: ev})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if got.GetTopic() != "b" || got.GetId() != "same-1" || got.GetSource() != "https://example.com/shop" || got.GetDuplicate() || got.GetSequence() != httpSeq+1 {
		t.Errorf("Publish = %v, want topic b, id same-1, sequence %d, not duplicate", got, httpSeq+1)
	}
	httpHdr, httpData := h.storedMsg(httpSeq)
	grpcHdr, grpcData := h.storedMsg(got.GetSequence())
	if string(httpData) != string(grpcData) {
		t.Errorf("stored data: HTTP %q, gRPC %q", httpData, grpcData)
	}
	want, have := ceHeaders(httpHdr), ceHeaders(grpcHdr)
	if len(want) < 7 {
		t.Fatalf("HTTP stored only %v", httpHdr)
	}
	for k, v := range want {
		if have[k] != v {
			t.Errorf("stored %s: HTTP %q, gRPC %q", k, v, have[k])
		}
	}
	for k, v := range have {
		if _, ok := want[k]; !ok {
			t.Errorf("gRPC stored %s: %q, HTTP did not", k, v)
		}
	}
}

// ceHeaders are a stored message's ce- headers and Content-Type, without
// the trace context.
func ceHeaders(h http.Header) map[string]string {
	m := map[string]string{}
	for k, v := range h {
		lk := strings.ToLower(k)
		if (strings.HasPrefix(lk, "ce-") || lk == "content-type") && lk != "ce-traceparent" && lk != "ce-tracestate" {
			m[lk] = strings.Join(v, ",")
		}
	}
	return m
}

func TestGRPCPublishBatchAndDuplicates(t *testing.T) {
	h := newHarness(t, nil)
	client := eventsidecarv1.NewEventSidecarClient(h.serveGRPC())
	batch := &eventsidecarv1.PublishBatchRequest{Topic: "orders.created", Events: []*pb.CloudEvent{pbEvent("b-1"), pbEvent("b-2"), pbEvent("b-3")}}
	first, err := client.PublishBatch(rpcCtx(t), batch)
	if err != nil {
		t.Fatalf("PublishBatch: %v", err)
	}
	for i, r := range first.GetResults() {
		if r.GetId() != batch.Events[i].Id || r.GetSource() != "/shop" || r.GetSequence() != uint64(i+1) || r.GetDuplicate() {
			t.Errorf("result %d = %v, want id %s, sequence %d", i, r, batch.Events[i].Id, i+1)
		}
	}
	if n := len(first.GetResults()); n != 3 {
		t.Fatalf("%d results, want 3", n)
	}
	again, err := client.PublishBatch(rpcCtx(t), batch)
	if err != nil {
		t.Fatalf("PublishBatch again: %v", err)
	}
	for i, r := range again.GetResults() {
		if !r.GetDuplicate() || r.GetSequence() != uint64(i+1) {
			t.Errorf("resent result %d = %v, want duplicate of sequence %d", i, r, i+1)
		}
	}
	dup, err := client.Publish(rpcCtx(t), &eventsidecarv1.PublishRequest{Topic: "orders.created", Event: pbEvent("b-2")})
	if err != nil {
		t.Fatalf("Publish duplicate: %v", err)
	}
	if !dup.GetDuplicate() || dup.GetSequence() != 2 {
		t.Errorf("Publish duplicate = %v, want duplicate of sequence 2", dup)
	}
	if n := h.stored(); n != 3 {
		t.Errorf("stored = %d, want 3", n)
	}
}

func TestGRPCRejects(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.HTTP.MaxBatchEvents = 2
		c.HTTP.MaxEventBytes = 512
		c.Scopes.Publish = []string{"orders.>"}
	})
	client := eventsidecarv1.NewEventSidecarClient(h.serveGRPC())
	noSource := pbEvent("x")
	noSource.Source = ""
	big := pbEvent("big")
	big.Data = &pb.CloudEvent_BinaryData{BinaryData: make([]byte, 600)}
	tests := []struct {
		name  string
		call  func() error
		code  codes.Code
		field string
	}{
		{"missing source", publish(client, "orders.a", noSource), codes.InvalidArgument, "source"},
		{"missing event", publish(client, "orders.a", nil), codes.InvalidArgument, "event"},
		{"bad idempotency key", func() error {
			_, err := client.Publish(rpcCtx(t), &eventsidecarv1.PublishRequest{Topic: "orders.a", Event: pbEvent("k"), IdempotencyKey: strings.Repeat("k", 1000)})
			return err
		}, codes.InvalidArgument, "idempotency_key"},
		{"wildcard topic", publish(client, "orders.*", pbEvent("w")), codes.InvalidArgument, "topic"},
		{"out of scope", publish(client, "payments.a", pbEvent("s")), codes.PermissionDenied, ""},
		{"event too large", publish(client, "orders.a", big), codes.ResourceExhausted, "event"},
		{"batch entry invalid", publishBatch(client, "orders.a", pbEvent("ok"), noSource), codes.InvalidArgument, "events[1]"},
		{"empty batch", publishBatch(client, "orders.a"), codes.InvalidArgument, "events"},
		{"too many events", publishBatch(client, "orders.a", pbEvent("1"), pbEvent("2"), pbEvent("3")), codes.ResourceExhausted, "events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := apitest.WantCode(t, tt.call(), tt.code)
			if tt.field != "" {
				apitest.WantField(t, st, tt.field)
			}
		})
	}
	if n := h.stored(); n != 0 {
		t.Errorf("stored = %d, want 0", n)
	}
}

func publish(c eventsidecarv1.EventSidecarClient, topic string, ev *pb.CloudEvent) func() error {
	return func() error {
		_, err := c.Publish(context.Background(), &eventsidecarv1.PublishRequest{Topic: topic, Event: ev})
		return err
	}
}

func publishBatch(c eventsidecarv1.EventSidecarClient, topic string, evs ...*pb.CloudEvent) func() error {
	return func() error {
		_, err := c.PublishBatch(context.Background(), &eventsidecarv1.PublishBatchRequest{Topic: topic, Events: evs})
		return err
	}
}
