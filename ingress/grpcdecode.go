package ingress

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/problem"
)

// grpc-go answers Internal for every error of a codec's Unmarshal (and
// writes that status before the handler runs), so a malformed request, or
// one with invalid UTF-8 in a string field, would not answer
// InvalidArgument. EventSidecar's methods therefore receive their requests
// as frames, undecoded, through frameCodec, and decode them themselves with
// decodeRequest.

// frame is a request message as received, still encoded.
type frame struct {
	buf mem.Buffer
}

// free returns the frame's buffer to its pool.
func (f *frame) free() {
	if f.buf != nil {
		f.buf.Free()
		f.buf = nil
	}
}

// frameCodec is grpc's proto codec, except that it hands a *frame the
// message's bytes undecoded. It is safe for concurrent use.
type frameCodec struct {
	encoding.CodecV2
}

// newFrameCodec wraps the registered proto codec.
func newFrameCodec() frameCodec {
	return frameCodec{CodecV2: encoding.GetCodecV2(protocodec.Name)}
}

// Unmarshal keeps data in a *frame, and decodes it into any other message.
func (c frameCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*frame)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	f.free()
	f.buf = data.MaterializeToBuffer(mem.DefaultBufferPool())
	return nil
}

// eventSidecarDesc is EventSidecar's service description with every method
// decoding its requests with decodeRequest.
func (s *Server) eventSidecarDesc() *grpc.ServiceDesc {
	desc := eventsidecarv1.EventSidecar_ServiceDesc
	desc.Methods = slices.Clone(desc.Methods)
	for i, m := range desc.Methods {
		desc.Methods[i].Handler = s.decodingUnary(m.Handler)
	}
	desc.Streams = slices.Clone(desc.Streams)
	for i, st := range desc.Streams {
		desc.Streams[i].Handler = decodingStream(st.Handler)
	}
	return &desc
}

// decodingUnary makes h decode its request with decodeRequest; a malformed
// request counts as a rejected publish.
func (s *Server) decodingUnary(h grpc.MethodHandler) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
		return h(srv, ctx, func(m any) error {
			err := decodeRequest(dec, m)
			var e *problem.Error
			if errors.As(err, &e) {
				return s.grpcReject(e)
			}
			return err
		}, in)
	}
}

// decodingStream makes h's stream decode its messages with decodeRequest.
func decodingStream(h grpc.StreamHandler) grpc.StreamHandler {
	return func(srv any, ss grpc.ServerStream) error {
		return h(srv, &framedStream{ServerStream: ss})
	}
}

// framedStream is a server stream whose RecvMsg decodes with decodeRequest.
type framedStream struct {
	grpc.ServerStream
}

// RecvMsg receives the next message into m; a malformed one is an
// InvalidArgument status.
func (fs *framedStream) RecvMsg(m any) error {
	err := decodeRequest(fs.ServerStream.RecvMsg, m)
	var e *problem.Error
	if errors.As(err, &e) {
		return problem.GRPCStatus(e)
	}
	return err
}

// decodeRequest receives a message as a frame with recv and decodes it
// into m. It returns recv's error as it is, and an *problem.Error (400,
// InvalidArgument) for a message that is not valid protobuf of m's type.
func decodeRequest(recv func(any) error, m any) error {
	var f frame
	defer f.free()
	if err := recv(&f); err != nil {
		return err
	}
	msg, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("ingress: decode gRPC request: %T is not a protobuf message", m)
	}
	if err := proto.Unmarshal(f.buf.ReadOnlyData(), msg); err != nil {
		return problem.New(problem.CodeInvalid, fmt.Sprintf("request: not a valid %s message: %v", msg.ProtoReflect().Descriptor().FullName(), err))
	}
	return nil
}
