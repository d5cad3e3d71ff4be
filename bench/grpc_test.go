package bench

import (
	"context"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	ceprotobuf "github.com/cloudevents/sdk-go/binding/format/protobuf/v2"
	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/ingress"
)

// The gRPC benchmarks: publish single events and batches, and deliver a
// backlog over a Subscribe stream, each against the sidecar's gRPC API on a
// 127.0.0.1 TCP listener over a fresh node. Compare them with
// BenchmarkDirectPublish (the baseline), BenchmarkHTTPPublishSingle,
// BenchmarkHTTPPublishBatch100 and BenchmarkDelivery of the same run.

func BenchmarkGRPCPublishSingle(b *testing.B) {
	o := DefaultOptions()
	benchGRPC(b, o.Concurrency, 1, func(ctx context.Context, c eventsidecarv1.EventSidecarClient, w int, seq uint64) error {
		ev, err := ceprotobuf.ToProto(newEvent(w, seq))
		if err != nil {
			return err
		}
		_, err = c.Publish(ctx, &eventsidecarv1.PublishRequest{Topic: topic, Event: ev})
		return err
	})
}

func BenchmarkGRPCPublishBatch100(b *testing.B) {
	o := DefaultOptions()
	benchGRPC(b, o.BatchConcurrency, o.BatchSize, func(ctx context.Context, c eventsidecarv1.EventSidecarClient, w int, seq uint64) error {
		evs := make([]*pb.CloudEvent, o.BatchSize)
		for i := range evs {
			var err error
			if evs[i], err = ceprotobuf.ToProto(newEvent(w, seq*uint64(o.BatchSize)+uint64(i))); err != nil {
				return err
			}
		}
		_, err := c.PublishBatch(ctx, &eventsidecarv1.PublishBatchRequest{Topic: topic, Events: evs})
		return err
	})
}

func BenchmarkGRPCStreamDelivery(b *testing.B) {
	n := benchNode(b, DefaultOptions())
	d, err := newDeliverer(b.Context(), n, "", aimInFlight, DefaultOptions().log())
	if err != nil {
		b.Fatal(err)
	}
	client := serveGRPC(b, n, d.m)
	f := &feeder{b: n.broker}
	if err := f.store(b.Context(), b.N); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	stream, err := client.Subscribe(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	err = stream.Send(&eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Start_{
		Start: &eventsidecarv1.SubscribeRequest_Start{Subscription: subscription, MaxInFlight: aimInFlight}}})
	if err != nil {
		b.Fatal(err)
	}
	for got := 0; got < b.N; {
		resp, err := stream.Recv()
		if err != nil {
			b.Fatalf("%d of %d delivered: %v", got, b.N, err)
		}
		dl := resp.GetDelivery()
		if dl == nil {
			continue
		}
		got++
		err = stream.Send(&eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Ack_{
			Ack: &eventsidecarv1.SubscribeRequest_Ack{DeliveryId: dl.GetDeliveryId()}}})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportEvents(b, b.N)
}

// benchGRPC runs call from about concurrency goroutines (a multiple of
// GOMAXPROCS) against a fresh sidecar's gRPC API.
func benchGRPC(b *testing.B, concurrency, perCall int, call func(context.Context, eventsidecarv1.EventSidecarClient, int, uint64) error) {
	client := serveGRPC(b, benchNode(b, DefaultOptions()), nil)
	procs := runtime.GOMAXPROCS(0)
	var workers, failed atomic.Int64
	var first sync.Once
	b.SetParallelism(max(1, concurrency/procs))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := int(workers.Add(1) - 1)
		for seq := uint64(0); pb.Next(); seq++ {
			if err := call(b.Context(), client, w, seq); err != nil {
				failed.Add(1)
				first.Do(func() { b.Error(err) })
			}
		}
	})
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d calls failed", n)
	}
	reportEvents(b, b.N*perCall)
}

// serveGRPC serves the sidecar's gRPC API over n (subscriptions from subs,
// which may be nil for publishing only) until the benchmark ends, and
// returns a client of it.
func serveGRPC(b *testing.B, n *node, subs ingress.Subscriptions) eventsidecarv1.EventSidecarClient {
	b.Helper()
	srv, err := ingress.New(n.cfg, n.broker, subs, n.broker.Ready, prometheus.NewRegistry(), DefaultOptions().log())
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeGRPC(ctx, ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = conn.Close()
		stop()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	return eventsidecarv1.NewEventSidecarClient(conn)
}
