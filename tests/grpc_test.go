package tests

import (
	"testing"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
)

func TestGRPCPublishAndHealth(t *testing.T) {
	sc := startSidecar(t, withGRPC(embeddedConfig(t.TempDir(), "")))
	conn := sc.dial()

	health, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil || health.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v; want SERVING", health, err)
	}
	resp, err := eventsidecarv1.NewEventSidecarClient(conn).Publish(t.Context(), &eventsidecarv1.PublishRequest{
		Topic: "orders.created",
		Event: &pb.CloudEvent{Id: "grpc-1", Source: "/grpc", SpecVersion: "1.0", Type: "com.example.grpc",
			Attributes: map[string]*pb.CloudEventAttributeValue{
				"datacontenttype": {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "text/plain"}},
			},
			Data: &pb.CloudEvent_TextData{TextData: "hello"}},
	})
	if err != nil || resp.Sequence != 1 || resp.Duplicate || resp.Id != "grpc-1" {
		t.Fatalf("Publish = %v, %v", resp, err)
	}
	msg, err := stream(t, sc.natsURL).GetMsg(t.Context(), resp.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("ce-id") != "grpc-1" || msg.Header.Get("ce-source") != "/grpc" ||
		msg.Header.Get("ce-datacontenttype") != "text/plain" || string(msg.Data) != "hello" {
		t.Errorf("stored %v %q", msg.Header, msg.Data)
	}
}
