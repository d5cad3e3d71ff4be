package ingress

import (
	"testing"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/grpc"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/server"
)

// firstMessage serves Subscribe by receiving the stream's first message
// and ending with the error of that: through the publish path's decoding
// (egress.Subscriber serves the stream for real, and has its tests).
type firstMessage struct{}

var _ server.Subscriber = firstMessage{}

func (firstMessage) Subscribe(stream server.SubscribeStream) error {
	_, err := stream.Recv()
	return err
}

// streamHarness is a harness whose gRPC API delivers through
// firstMessage.
type streamHarness struct {
	*harness
	conn *grpc.ClientConn
}

func newStreamHarness(t *testing.T, mutate func(*config.Config)) *streamHarness {
	t.Helper()
	base := newHarness(t, mutate)
	h := newHarnessOn(t, base.cfg, base.broker, base.broker, nil, firstMessage{}, base.log)
	conn := h.serveGRPC()
	return &streamHarness{harness: h, conn: conn}
}

func ceString(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
}
