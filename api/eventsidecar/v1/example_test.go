package eventsidecarv1_test

import (
	"context"
	"log"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
)

// Publish one event to the sidecar on its default gRPC address.
func ExampleEventSidecarClient_Publish() {
	conn, err := grpc.NewClient("127.0.0.1:3601", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := eventsidecarv1.NewEventSidecarClient(conn)
	resp, err := client.Publish(context.Background(), &eventsidecarv1.PublishRequest{
		Topic: "orders.created",
		Event: &pb.CloudEvent{
			Id: "order-2002", Source: "/shop/grpc", SpecVersion: "1.0", Type: "com.example.order.created",
			Attributes: map[string]*pb.CloudEventAttributeValue{
				"datacontenttype": {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "application/json"}},
			},
			Data: &pb.CloudEvent_TextData{TextData: `{"order":2002}`},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("stored at sequence %d (duplicate: %v)", resp.GetSequence(), resp.GetDuplicate())
}

// Receive the events of topics orders.* on an ad-hoc subscription and
// answer each: ack when handled, retry (with the subscription's backoff)
// when not.
func ExampleEventSidecarClient_Subscribe() {
	conn, err := grpc.NewClient("127.0.0.1:3601", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	stream, err := eventsidecarv1.NewEventSidecarClient(conn).Subscribe(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	err = stream.Send(&eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Start_{
		Start: &eventsidecarv1.SubscribeRequest_Start{Subscription: "orders-worker", Topic: "orders.*", MaxInFlight: 16}}})
	if err != nil {
		log.Fatal(err)
	}
	handle := func(ev *pb.CloudEvent) error {
		log.Printf("%s %s: %s", ev.GetType(), ev.GetId(), ev.GetTextData())
		return nil
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			log.Fatal(err) // the sidecar hands unanswered events to other streams
		}
		d := resp.GetDelivery()
		if d == nil {
			continue // Started: the subscription is in place
		}
		answer := &eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Ack_{
			Ack: &eventsidecarv1.SubscribeRequest_Ack{DeliveryId: d.GetDeliveryId()}}}
		if err := handle(d.GetEvent()); err != nil {
			answer.Request = &eventsidecarv1.SubscribeRequest_Retry_{
				Retry: &eventsidecarv1.SubscribeRequest_Retry{DeliveryId: d.GetDeliveryId()}}
		}
		if err := stream.Send(answer); err != nil {
			log.Fatal(err)
		}
	}
}
