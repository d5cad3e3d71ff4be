package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	ceprotobuf "github.com/cloudevents/sdk-go/binding/format/protobuf/v2"
	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/server"
)

// grpcSidecar is the sidecar's gRPC API over a node, served in process on
// a 127.0.0.1 TCP listener, with a client connection to it: one HTTP/2
// connection, as an app's gRPC channel is. The caller must Close it; the
// node stays the caller's.
type grpcSidecar struct {
	client eventsidecarv1.EventSidecarClient
	conn   *grpc.ClientConn
	stop   context.CancelFunc
	done   chan error
}

// startGRPC serves the gRPC API over n, with the Subscribe stream of sub
// (nil for none: Subscribe then fails), until Close; ctx only carries
// values.
func startGRPC(ctx context.Context, n *node, sub server.Subscriber, log *slog.Logger) (*grpcSidecar, error) {
	srv, ln, err := listenIngress(n, sub, log)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("bench: gRPC client: %w", err), ln.Close())
	}
	serveCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	g := &grpcSidecar{client: eventsidecarv1.NewEventSidecarClient(conn), conn: conn, stop: stop, done: make(chan error, 1)}
	go func() { g.done <- srv.ServeGRPC(serveCtx, ln) }()
	return g, nil
}

// Close closes the client connection, then stops serving (gracefully).
func (g *grpcSidecar) Close() error {
	var err error
	if cerr := g.conn.Close(); cerr != nil {
		err = fmt.Errorf("bench: gRPC client: close: %w", cerr)
	}
	g.stop()
	return errors.Join(err, <-g.done)
}

// GRPCCall makes worker w's seq-th call on c.
type GRPCCall func(ctx context.Context, c eventsidecarv1.EventSidecarClient, w int, seq uint64) error

// PublishOf makes unary Publish calls of single events with data, JSON:
// worker w's seq-th call stores the event EventID(w, seq).
func PublishOf(data []byte) GRPCCall {
	return func(ctx context.Context, c eventsidecarv1.EventSidecarClient, w int, seq uint64) error {
		ev, err := protoEvent(EventID(w, seq), data)
		if err != nil {
			return err
		}
		if _, err := c.Publish(ctx, &eventsidecarv1.PublishRequest{Topic: Topic, Event: ev}); err != nil {
			return fmt.Errorf("bench: gRPC Publish: %w", err)
		}
		return nil
	}
}

// publishBatchOf makes PublishBatch calls of size events: worker w's
// events seq*size to seq*size+size-1, as batchRequest's.
func publishBatchOf(size int) GRPCCall {
	return func(ctx context.Context, c eventsidecarv1.EventSidecarClient, w int, seq uint64) error {
		events := make([]*pb.CloudEvent, size)
		for i := range events {
			var err error
			if events[i], err = protoEvent(EventID(w, seq*uint64(size)+uint64(i)), eventData); err != nil {
				return err
			}
		}
		if _, err := c.PublishBatch(ctx, &eventsidecarv1.PublishBatchRequest{Topic: Topic, Events: events}); err != nil {
			return fmt.Errorf("bench: gRPC PublishBatch: %w", err)
		}
		return nil
	}
}

// protoEvent is the benchmark's event with id and data in the CloudEvents
// protobuf format, its data as binary_data with its datacontenttype.
func protoEvent(id string, data []byte) (*pb.CloudEvent, error) {
	ev, err := ceprotobuf.ToProto(eventOf(id, data))
	if err != nil {
		return nil, fmt.Errorf("bench: event %s to protobuf: %w", id, err)
	}
	return ev, nil
}

// GRPCOp makes call's calls on c, each bounded by requestTimeout as the
// HTTP client's requests are; a call fails on any status but OK.
func GRPCOp(c eventsidecarv1.EventSidecarClient, call GRPCCall) Op {
	return func(ctx context.Context, w int, seq uint64) error {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		return call(ctx, c, w, seq)
	}
}

// measureGRPC returns the measurement of the sidecar's gRPC API on a fresh
// node with call's calls, from s.concurrency workers over one client
// connection.
func measureGRPC(call GRPCCall) func(context.Context, Options, scenario) (measurement, error) {
	return func(ctx context.Context, o Options, s scenario) (m measurement, err error) {
		n, err := openNode(ctx, o)
		if err != nil {
			return m, err
		}
		defer func() { err = errors.Join(err, n.Close()) }()
		g, err := startGRPC(ctx, n, nil, o.log())
		if err != nil {
			return m, err
		}
		defer func() { err = errors.Join(err, g.Close()) }()
		m.samples, m.win = Load{Concurrency: s.concurrency, Warmup: o.Warmup, Duration: o.Duration}.run(ctx, GRPCOp(g.client, call))
		m.stores = true
		m.stored, err = n.stored(ctx)
		return m, err
	}
}
