package daprapi

import (
	"context"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Service is the gRPC service dapr.proto.runtime.v1.Dapr of Dapr 1.18:
// PublishEvent, BulkPublishEvent and BulkPublishEventAlpha1 by the same
// rules as HTTP (metadata keys without the "metadata." prefix); every
// other method answers Unimplemented. Errors are Dapr's statuses, with
// ResourceInfo, ErrorInfo and RetryInfo details. It is safe for
// concurrent use.
type Service struct {
	runtimev1.UnimplementedDaprServer
	s *Server
}

var _ runtimev1.DaprServer = (*Service)(nil)

// Service returns the gRPC Dapr service over s.
func (s *Server) Service() *Service { return &Service{s: s} }

// Desc is the service's description, to register it with a gRPC server
// (implemented by the Service itself).
func (*Service) Desc() *grpc.ServiceDesc { return &runtimev1.Dapr_ServiceDesc }

// PublishEvent stores one event, wrapped from data and data_content_type
// by Dapr's rules; it answers once the broker stored it.
func (g *Service) PublishEvent(ctx context.Context, req *runtimev1.PublishEventRequest) (*emptypb.Empty, error) {
	pubsub, topic := req.GetPubsubName(), req.GetTopic()
	if e := g.s.target(pubsub, topic); e != nil {
		return nil, e
	}
	release, err := g.s.store.Hold(int64(proto.Size(req)))
	if err != nil {
		return nil, g.s.daprError(err, pubsub, topic)
	}
	defer release()
	if e := g.s.publishOne(ctx, pubsub, topic, req.GetDataContentType(), req.GetData(), req.GetMetadata()); e != nil {
		return nil, e
	}
	return &emptypb.Empty{}, nil
}

// BulkPublishEvent stores the entries as one batch. When only some are
// stored it answers OK with the others in failed_entries; when none is,
// the error status of why.
func (g *Service) BulkPublishEvent(ctx context.Context, req *runtimev1.BulkPublishRequest) (*runtimev1.BulkPublishResponse, error) {
	pubsub, topic := req.GetPubsubName(), req.GetTopic()
	if e := g.s.target(pubsub, topic); e != nil {
		return nil, e
	}
	release, err := g.s.store.Hold(int64(proto.Size(req)))
	if err != nil {
		return nil, g.s.daprError(err, pubsub, topic)
	}
	defer release()
	entries := make([]entry, len(req.GetEntries()))
	for i, en := range req.GetEntries() {
		entries[i] = entry{id: en.GetEntryId(), data: en.GetEvent(), contentType: en.GetContentType(), metadata: en.GetMetadata()}
	}
	failed, e := g.s.publishBulk(ctx, pubsub, topic, entries, req.GetMetadata())
	if e != nil {
		return nil, e
	}
	resp := &runtimev1.BulkPublishResponse{}
	for _, f := range failed {
		resp.FailedEntries = append(resp.FailedEntries, &runtimev1.BulkPublishResponseFailedEntry{EntryId: f.EntryID, Error: f.Error})
	}
	return resp, nil
}

// BulkPublishEventAlpha1 is BulkPublishEvent under its older name, which
// SDKs fall back to.
func (g *Service) BulkPublishEventAlpha1(ctx context.Context, req *runtimev1.BulkPublishRequest) (*runtimev1.BulkPublishResponse, error) {
	return g.BulkPublishEvent(ctx, req)
}
