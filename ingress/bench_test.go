package ingress

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/server"
)

// The benchmarks publish as the separate-process benchmark does
// (internal/bench/apart): 256-byte JSON events in binary mode at c=64,
// batches of 100 at c=4, gRPC Publish at c=64, to a sidecar whose broker
// is a nats-server over TCP. Both run in this process, so a CPU profile
// shows the broker's share too (pprof's -ignore 'nats-server' leaves it
// out).

// benchHead begins every event's data.
const benchHead = `{"order_id":"ord-0000000042","customer_id":"cus-0000000007","amount_cents":1299000,"currency":"EUR","pad":"`

// benchData is every event's data: 256 bytes of JSON.
var benchData = []byte(benchHead + strings.Repeat("x", 256-len(benchHead)-2) + `"}`)

// benchTime is every event's time attribute.
const benchTime = "2025-01-02T03:04:05.678901Z"

// benchSidecar is the publish path served as the sidecar serves it, over
// a nats-server of its own on a loopback port.
type benchSidecar struct {
	in      *Server
	handler http.Handler
	seq     atomic.Uint64
}

func newBenchSidecar(b *testing.B) *benchSidecar {
	b.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: b.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		b.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats-server not ready")
	}
	b.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	cfg := config.Default()
	cfg.AppID = "bench"
	cfg.Broker.URL = ns.ClientURL()
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bc, err := broker.Open(ctx, cfg.Broker, "bench", log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bc.Close() })
	reg := prometheus.NewRegistry()
	in, err := New(cfg, bc, reg)
	if err != nil {
		b.Fatal(err)
	}
	api := server.New(cfg.HTTP, server.Handlers{Publish: in, RPC: in, Decoder: in, Ready: bc.Ready, Rejected: in.Rejected}, reg, log)
	return &benchSidecar{in: in, handler: api.Handler()}
}

// id is a new event id.
func (s *benchSidecar) id() string { return fmt.Sprintf("evt-%015d", s.seq.Add(1)) }

// answer is a ResponseWriter that keeps only the status.
type answer struct {
	h      http.Header
	status int
}

func (a *answer) Header() http.Header { return a.h }

func (a *answer) Write(p []byte) (int, error) { return len(p), nil }

func (a *answer) WriteHeader(status int) { a.status = status }

// serve runs one request through the sidecar's HTTP handler and fails
// unless it answers 200.
func (s *benchSidecar) serve(b *testing.B, req *http.Request) {
	a := &answer{h: http.Header{}}
	s.handler.ServeHTTP(a, req)
	if a.status != http.StatusOK {
		b.Errorf("status %d, want 200", a.status)
	}
}

// binaryRequest is a binary-mode publish of one event, its headers as
// net/http's server hands them over.
func (s *benchSidecar) binaryRequest() *http.Request {
	req, _ := http.NewRequest(http.MethodPost, "/v1/publish/bench.orders", bytes.NewReader(benchData))
	req.Header = http.Header{
		"Content-Type":   {"application/json"},
		"Ce-Specversion": {"1.0"},
		"Ce-Id":          {s.id()},
		"Ce-Source":      {"/bench/orders"},
		"Ce-Type":        {"com.example.order.created"},
		"Ce-Time":        {benchTime},
	}
	return req
}

// batchRequest is a batch publish of n events.
func (s *benchSidecar) batchRequest(n int) *http.Request {
	var body bytes.Buffer
	body.WriteByte('[')
	for i := range n {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"specversion":"1.0","id":%q,"source":"/bench/orders","type":"com.example.order.created","time":%q,"datacontenttype":"application/json","data":%s}`,
			s.id(), benchTime, benchData)
	}
	body.WriteByte(']')
	req, _ := http.NewRequest(http.MethodPost, "/v1/publish/bench.orders", &body)
	req.Header = http.Header{"Content-Type": {"application/cloudevents-batch+json"}}
	return req
}

// BenchmarkPublishBinary is one binary-mode HTTP publish, 64 at a time.
func BenchmarkPublishBinary(b *testing.B) {
	s := newBenchSidecar(b)
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.serve(b, s.binaryRequest())
		}
	})
}

// BenchmarkPublishBatch is one HTTP batch of 100 events, 4 at a time; its
// time per operation is per batch.
func BenchmarkPublishBatch(b *testing.B) {
	s := newBenchSidecar(b)
	b.SetParallelism(2)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.serve(b, s.batchRequest(100))
		}
	})
}

// BenchmarkPublishGRPC is one gRPC Publish (the method, without the gRPC
// server), 64 at a time.
func BenchmarkPublishGRPC(b *testing.B) {
	s := newBenchSidecar(b)
	ts := timestamppb.New(time.Date(2025, 1, 2, 3, 4, 5, 678901000, time.UTC))
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(p *testing.PB) {
		for p.Next() {
			req := &eventsidecarv1.PublishRequest{Topic: "bench.orders", Event: &pb.CloudEvent{
				Id: s.id(), Source: "/bench/orders", SpecVersion: "1.0", Type: "com.example.order.created",
				Attributes: map[string]*pb.CloudEventAttributeValue{
					"time":            {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: ts}},
					"datacontenttype": {Attr: &pb.CloudEventAttributeValue_CeString{CeString: "application/json"}},
				},
				Data: &pb.CloudEvent_BinaryData{BinaryData: benchData},
			}}
			if _, err := s.in.Publish(context.Background(), req); err != nil {
				b.Error(err)
			}
		}
	})
}
