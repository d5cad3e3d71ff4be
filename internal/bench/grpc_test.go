package bench

import (
	"testing"

	"github.com/eventsidecar/eventsidecar/egress"
	"github.com/eventsidecar/eventsidecar/server"
)

// The gRPC benchmarks: publish single events and batches, and deliver a
// backlog over a Subscribe stream, each against the sidecar's gRPC API on a
// 127.0.0.1 TCP listener over a fresh node. Compare them with
// BenchmarkDirectPublish (the baseline), BenchmarkHTTPPublishSingle,
// BenchmarkHTTPPublishBatch100 and BenchmarkDelivery of the same run.

func BenchmarkGRPCPublishSingle(b *testing.B) {
	o := DefaultOptions()
	benchGRPC(b, o, o.Concurrency, 1, PublishOf(eventData))
}

func BenchmarkGRPCPublishBatch100(b *testing.B) {
	o := DefaultOptions()
	benchGRPC(b, o, o.BatchConcurrency, o.BatchSize, publishBatchOf(o.BatchSize))
}

func BenchmarkGRPCStreamDelivery(b *testing.B) {
	o := DefaultOptions()
	n := benchNode(b, o)
	d, err := newDeliverer(b.Context(), n, "", aimInFlight, o.log())
	if err != nil {
		b.Fatal(err)
	}
	g := benchGRPCServer(b, n, egress.NewSubscriber(d.m), o)
	f := &feeder{b: n.broker, data: eventData}
	if err := f.store(b.Context(), b.N); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	app, err := subscribe(b.Context(), g.client, aimInFlight, b.N)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := app.Close(); err != nil {
			b.Error(err)
		}
	})
	awaitBacklog(b, d, app.arrivals, b.N)
}

// benchGRPC makes call's calls from about concurrency goroutines (a
// multiple of GOMAXPROCS), over one connection, against a fresh sidecar's
// gRPC API.
func benchGRPC(b *testing.B, o Options, concurrency, perCall int, call GRPCCall) {
	g := benchGRPCServer(b, benchNode(b, o), nil, o)
	benchParallel(b, concurrency, perCall, GRPCOp(g.client, call))
}

// benchGRPCServer serves the sidecar's gRPC API over n (subscriptions
// from sub, nil for publishing only) until the benchmark ends.
func benchGRPCServer(b *testing.B, n *node, sub server.Subscriber, o Options) *grpcSidecar {
	b.Helper()
	g, err := startGRPC(b.Context(), n, sub, o.log())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := g.Close(); err != nil {
			b.Error(err)
		}
	})
	return g
}
