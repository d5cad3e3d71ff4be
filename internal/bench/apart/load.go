package apart

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/bench"
)

// The kinds of load generator.
const (
	loadHTTP      = "http"       // binary-mode single events, closed loop
	loadBatch     = "batch"      // batches, closed loop
	loadGRPC      = "grpc"       // unary Publish calls over one connection, closed loop
	loadNATSSync  = "nats-sync"  // nats.go JetStream sync publishes over one connection, closed loop
	loadNATSAsync = "nats-async" // nats.go JetStream async publishes, a bounded window
	loadOpen      = "open"       // stamped single events at a fixed rate, open loop
)

// loadSpec is the load generator role's settings.
type loadSpec struct {
	Kind   string
	Target string // the publish URL, the gRPC address or the NATS URL
	// Concurrency is the number of workers (open loop: senders; async:
	// outstanding acks).
	Concurrency int
	BatchSize   int // events per batch
	Rate        int // events per second of the open loop
	// Stored makes a direct publisher send the message the sidecar stores
	// for each event (bench.StoredMsg) instead of directMsg's.
	Stored bool
}

// timeFrame is a measurement's time frame, on the machine's clock: the
// warm-up from Start until From, then the measured time until To.
type timeFrame struct {
	Start, From, To time.Time
}

// publishTimeout bounds a direct publish, as the sidecar's broker
// publish_timeout does.
var publishTimeout = config.Default().Broker.PublishTimeout

// generator runs one load generator's measurement over a time frame.
type generator func(ctx context.Context, f timeFrame) bench.Result

// serveLoad connects, says hello, runs the load over the time frame it
// is sent and answers with its bench.Result, then waits for its parent to
// close its standard input.
func serveLoad(ctx context.Context, spec []byte, l *link) error {
	var sp loadSpec
	if err := decodeSpec(spec, &sp); err != nil {
		return err
	}
	gen, closeGen, err := newGenerator(sp)
	if err != nil {
		return err
	}
	defer closeGen()
	if err := l.send(struct{}{}); err != nil {
		return err
	}
	var f timeFrame
	if ok, err := l.next(&f); !ok || err != nil {
		return err
	}
	if err := l.send(gen(ctx, f)); err != nil {
		return err
	}
	l.drain()
	return nil
}

// closedLoop is s's closed-loop load over f.
func closedLoop(s loadSpec, f timeFrame) bench.Load {
	return bench.Load{Concurrency: s.Concurrency, Start: f.Start, Warmup: f.From.Sub(f.Start), Duration: f.To.Sub(f.From)}
}

// newGenerator is s's load generator with what it holds open, to close
// after it.
func newGenerator(s loadSpec) (generator, func(), error) {
	switch s.Kind {
	case loadHTTP, loadBatch:
		return httpGenerator(s), func() {}, nil
	case loadGRPC:
		return grpcGenerator(s)
	case loadNATSSync, loadNATSAsync:
		return natsGenerator(s)
	case loadOpen:
		return func(ctx context.Context, f timeFrame) bench.Result {
			l := bench.OpenLoop{Rate: s.Rate, Senders: s.Concurrency, Start: f.Start, Warmup: f.From.Sub(f.Start), Duration: f.To.Sub(f.From)}
			return l.Measure(ctx, s.Target, stampedRequest)
		}, func() {}, nil
	}
	return nil, nil, fmt.Errorf("no load generator of kind %q", s.Kind)
}

// httpGenerator posts single events, or batches, over a keep-alive
// client with a connection per worker.
func httpGenerator(s loadSpec) generator {
	build, perRequest := bench.RequestFunc(singleRequest), 1
	if s.Kind == loadBatch {
		build, perRequest = bench.BatchOf(s.BatchSize, eventData), s.BatchSize
	}
	return func(ctx context.Context, f timeFrame) bench.Result {
		client := bench.NewClient(s.Concurrency)
		defer client.CloseIdleConnections()
		return closedLoop(s, f).Measure(ctx, perRequest, bench.HTTPOp(client, s.Target, build))
	}
}

// grpcGenerator makes unary Publish calls over one client connection.
func grpcGenerator(s loadSpec) (generator, func(), error) {
	conn, err := grpc.NewClient(s.Target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("gRPC client: %w", err)
	}
	do := bench.GRPCOp(eventsidecarv1.NewEventSidecarClient(conn), bench.PublishOf(eventData))
	return func(ctx context.Context, f timeFrame) bench.Result {
		return closedLoop(s, f).Measure(ctx, 1, do)
	}, func() { _ = conn.Close() }, nil
}

// natsGenerator publishes directMsg's messages, or with s.Stored the
// sidecar's, over one connection, with JetStream's sync or async API.
func natsGenerator(s loadSpec) (generator, func(), error) {
	msg := directMsg
	if s.Stored {
		msg = func(w int, seq uint64) *nats.Msg { return bench.StoredMsg(subject, w, seq) }
	}
	nc, err := nats.Connect(s.Target, nats.Name("eventsidecar-bench direct publisher"))
	if err != nil {
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	if s.Kind == loadNATSAsync {
		a, err := bench.NewAsync(nc, func(seq uint64) *nats.Msg { return msg(0, seq) }, s.Concurrency, publishTimeout)
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return func(ctx context.Context, f timeFrame) bench.Result { return a.Measure(ctx, closedLoop(s, f)) }, nc.Close, nil
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	do := func(ctx context.Context, w int, seq uint64) error {
		ctx, cancel := context.WithTimeout(ctx, publishTimeout)
		defer cancel()
		if _, err := js.PublishMsg(ctx, msg(w, seq)); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		return nil
	}
	return func(ctx context.Context, f timeFrame) bench.Result { return closedLoop(s, f).Measure(ctx, 1, do) }, nc.Close, nil
}
