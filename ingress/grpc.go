package ingress

import (
	"context"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/dedup"
	"github.com/eventsidecar/eventsidecar/problem"
	"github.com/eventsidecar/eventsidecar/wire"
)

// GRPCCodec is the codec the gRPC server serving GRPCDesc must use: grpc's
// proto codec, except that EventSidecar's requests reach their methods
// undecoded (see frameCodec).
func (s *Server) GRPCCodec() encoding.CodecV2 { return newFrameCodec() }

// GRPCDesc is EventSidecar's service description with every method
// decoding its own request, so that a malformed one answers
// InvalidArgument; serve it with GRPCCodec.
func (s *Server) GRPCDesc() *grpc.ServiceDesc { return s.eventSidecarDesc() }

// Publish is EventSidecar's Publish RPC: it stores one event through the
// shared publish path.
func (s *Server) Publish(ctx context.Context, req *eventsidecarv1.PublishRequest) (*eventsidecarv1.PublishResponse, error) {
	in := Input{Topic: req.GetTopic(), Mode: wire.ModeStructured}
	if req.GetIdempotencyKey() != "" {
		key, err := dedup.ParseKey(req.GetIdempotencyKey())
		if err != nil {
			return nil, s.grpcReject(problem.New(problem.CodeInvalid, "idempotency_key: "+err.Error()))
		}
		in.Key = key
	}
	if req.GetEvent() == nil {
		return nil, s.grpcReject(problem.New(problem.CodeInvalid, "event: required"))
	}
	results, err := s.storeGRPC(ctx, in, []*pb.CloudEvent{req.GetEvent()}, proto.Size(req))
	if err != nil {
		return nil, err
	}
	r := results[0]
	return &eventsidecarv1.PublishResponse{Topic: r.Topic, Id: r.ID, Source: r.Source, Sequence: r.Sequence, Duplicate: r.Duplicate}, nil
}

// PublishBatch is EventSidecar's PublishBatch RPC: it stores a batch, all
// or nothing, through the shared publish path.
func (s *Server) PublishBatch(ctx context.Context, req *eventsidecarv1.PublishBatchRequest) (*eventsidecarv1.PublishBatchResponse, error) {
	in := Input{Topic: req.GetTopic(), Mode: wire.ModeBatch}
	results, err := s.storeGRPC(ctx, in, req.GetEvents(), proto.Size(req))
	if err != nil {
		return nil, err
	}
	resp := &eventsidecarv1.PublishBatchResponse{Results: make([]*eventsidecarv1.PublishResult, len(results))}
	for i, r := range results {
		resp.Results[i] = &eventsidecarv1.PublishResult{Id: r.ID, Source: r.Source, Sequence: r.Sequence, Duplicate: r.Duplicate}
	}
	return resp, nil
}

// storeGRPC holds size bytes of the in-flight budget, converts the events
// and stores them; errors are gRPC statuses.
func (s *Server) storeGRPC(ctx context.Context, in Input, events []*pb.CloudEvent, size int) ([]Result, error) {
	start := time.Now()
	release, err := s.Hold(int64(size))
	if err != nil {
		return nil, s.grpcReject(err)
	}
	defer release()
	if in.Events, err = s.fromProto(in.Mode, events, size); err != nil {
		return nil, s.grpcReject(err)
	}
	results, err := s.Store(ctx, in)
	if err != nil {
		return nil, s.grpcReject(err)
	}
	s.metrics.latencyBy.of(in.Mode).Observe(time.Since(start).Seconds())
	return results, nil
}

// fromProto converts protobuf events (wire.DecodeProto) with the same
// limits as HTTP bodies. An event is measured only when the whole request,
// of size bytes, is larger than an event may be. A single event's error
// names the attribute; a batch's names the entries.
func (s *Server) fromProto(mode wire.Mode, pbs []*pb.CloudEvent, size int) ([]event.Event, error) {
	if mode == wire.ModeBatch && len(pbs) == 0 {
		return nil, problem.New(problem.CodeInvalid, "events: the batch is empty")
	}
	if mode == wire.ModeBatch && len(pbs) > s.limits.MaxBatchEvents {
		return nil, problem.New(problem.CodeTooLarge, fmt.Sprintf("events: more than http.max_batch_events (%d) events", s.limits.MaxBatchEvents))
	}
	events := make([]event.Event, len(pbs))
	var items []problem.ItemError
	tooLarge := false
	measure := int64(size) > s.limits.MaxEventBytes
	for i, p := range pbs {
		if measure {
			if n := int64(proto.Size(p)); n > s.limits.MaxEventBytes {
				items = append(items, problem.ItemError{Index: i, Detail: fmt.Sprintf("%d bytes, more than http.max_event_bytes (%d)", n, s.limits.MaxEventBytes)})
				tooLarge = true
				continue
			}
		}
		ev, err := wire.DecodeProto(p)
		if err != nil {
			items = append(items, problem.ItemError{Index: i, Detail: err.Error()})
			continue
		}
		events[i] = ev
	}
	if len(items) == 0 {
		return events, nil
	}
	code := problem.CodeInvalid
	if tooLarge && len(items) == 1 {
		code = problem.CodeTooLarge
	}
	if mode != wire.ModeBatch && tooLarge {
		return nil, problem.New(code, "event: "+items[0].Detail)
	}
	if mode != wire.ModeBatch {
		return nil, problem.New(code, items[0].Detail)
	}
	return nil, &problem.Error{Code: code, Detail: fmt.Sprintf("batch: %d of %d entries are invalid; nothing was stored", len(items), len(pbs)), Items: items}
}

// grpcReject counts err in the rejection metrics and returns its status.
func (s *Server) grpcReject(err error) error {
	s.count(err)
	return problem.GRPCStatus(err)
}
