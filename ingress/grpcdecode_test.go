package ingress

import (
	"testing"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/internal/apitest"
	"github.com/eventsidecar/eventsidecar/wire"
)

// textEvent is pbEvent("p-1") with the attributes attrs and the text_data
// text (no data when it is "").
func textEvent(attrs map[string]*pb.CloudEventAttributeValue, text string) *pb.CloudEvent {
	ev := pbEvent("p-1")
	ev.Attributes, ev.Data = attrs, nil
	if text != "" {
		ev.Data = &pb.CloudEvent_TextData{TextData: text}
	}
	return ev
}

// ctAttr is the attributes map of an event with only a datacontenttype.
func ctAttr(ct string) map[string]*pb.CloudEventAttributeValue {
	return map[string]*pb.CloudEventAttributeValue{"datacontenttype": ceString(ct)}
}

// textEvents are events whose text_data must be stored as the text's bytes,
// with the datacontenttype they must be stored with.
var textEvents = []struct {
	name     string
	ev       *pb.CloudEvent
	ct, data string
}{
	{"JSON", textEvent(ctAttr("application/json"), `{"order":2001}`), "application/json", `{"order":2001}`},
	{"no content type", textEvent(nil, "hi"), wire.ProtoTextType, "hi"},
	{"XML", textEvent(ctAttr("application/xml"), "<a>1</a>"), "application/xml", "<a>1</a>"},
}

func TestGRPCTextDataStoredAsSent(t *testing.T) {
	h := newHarness(t, nil)
	client := eventsidecarv1.NewEventSidecarClient(h.serveGRPC())
	var batch []*pb.CloudEvent
	for i, tt := range textEvents {
		t.Run("Publish "+tt.name, func(t *testing.T) {
			ev := proto.Clone(tt.ev).(*pb.CloudEvent)
			ev.Id = "single-" + tt.name
			resp, err := client.Publish(rpcCtx(t), &eventsidecarv1.PublishRequest{Topic: "orders.created", Event: ev})
			if err != nil {
				t.Fatalf("Publish: %v", err)
			}
			wantStored(t, h, resp.GetSequence(), tt.ct, tt.data)
		})
		ev := proto.Clone(tt.ev).(*pb.CloudEvent)
		ev.Id = "batch-" + string(rune('a'+i))
		batch = append(batch, ev)
	}
	resp, err := client.PublishBatch(rpcCtx(t), &eventsidecarv1.PublishBatchRequest{Topic: "orders.created", Events: batch})
	if err != nil {
		t.Fatalf("PublishBatch: %v", err)
	}
	for i, r := range resp.GetResults() {
		t.Run("PublishBatch "+textEvents[i].name, func(t *testing.T) {
			wantStored(t, h, r.GetSequence(), textEvents[i].ct, textEvents[i].data)
		})
	}
}

// readmeExample is the request of the README's grpcurl example.
const readmeExample = `{"topic":"orders.created","event":{"id":"order-2001","source":"/shop/grpc","specVersion":"1.0","type":"com.example.order.created","attributes":{"datacontenttype":{"ceString":"application/json"}},"textData":"{\"order\":2001}"}}`

func TestGRPCReadmeExampleStoresTheJSONObject(t *testing.T) {
	h := newHarness(t, nil)
	client := eventsidecarv1.NewEventSidecarClient(h.serveGRPC())
	var req eventsidecarv1.PublishRequest
	if err := protojson.Unmarshal([]byte(readmeExample), &req); err != nil {
		t.Fatal(err)
	}
	resp, err := client.Publish(rpcCtx(t), &req)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	wantStored(t, h, resp.GetSequence(), "application/json", `{"order":2001}`)
}

// wantStored checks the data and datacontenttype of the event stored at seq.
func wantStored(t *testing.T, h *harness, seq uint64, ct, data string) {
	t.Helper()
	ev := h.read(seq)
	if string(ev.Data()) != data || ev.DataContentType() != ct {
		t.Errorf("stored data %q (%q), want %q (%q)", ev.Data(), ev.DataContentType(), data, ct)
	}
}

func TestGRPCRejectsBadAttributes(t *testing.T) {
	h := newHarness(t, nil)
	client := eventsidecarv1.NewEventSidecarClient(h.serveGRPC())
	withAttr := func(name string) *pb.CloudEvent {
		return textEvent(map[string]*pb.CloudEventAttributeValue{name: ceString("x")}, "{}")
	}
	tests := []struct {
		name  string
		call  func() error
		field string
	}{
		{"name with a dash", publish(client, "orders.a", withAttr("Bad-Name")), "Bad-Name"},
		{"upper-case name", publish(client, "orders.a", withAttr("Upper")), "Upper"},
		{"required attribute in the map", publish(client, "orders.a", withAttr("source")), "source"},
		{"no value", publish(client, "orders.a", textEvent(map[string]*pb.CloudEventAttributeValue{"ext": {}}, "")), "ext"},
		{"batch entry", publishBatch(client, "orders.a", textEvent(nil, "{}"), withAttr("Bad-Name")), "events[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apitest.WantField(t, apitest.WantCode(t, tt.call(), codes.InvalidArgument), tt.field)
		})
	}
	if n := h.stored(); n != 0 {
		t.Errorf("stored = %d, want 0", n)
	}
}

// rawCodec sends and receives messages as the bytes they are.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// field1 is a message whose field 1 holds s (a string or submessage).
func field1(s []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), s)
}

// field2 is a message whose field 2 holds s.
func field2(s []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), s)
}

func TestGRPCMalformedRequests(t *testing.T) {
	h := newStreamHarness(t, nil)
	conn := h.conn
	valid, err := proto.Marshal(&eventsidecarv1.PublishRequest{Topic: "orders.created", Event: pbEvent("raw-ok")})
	if err != nil {
		t.Fatal(err)
	}
	const publishRPC, batchRPC = "/eventsidecar.v1.EventSidecar/Publish", "/eventsidecar.v1.EventSidecar/PublishBatch"
	tests := []struct {
		name, method string
		body         []byte
	}{
		{"not protobuf", publishRPC, []byte{0xff, 0xff, 0xff}},
		{"truncated", publishRPC, valid[:len(valid)-3]},
		{"invalid UTF-8 topic", publishRPC, field1([]byte("orders.\xff"))},
		{"invalid UTF-8 event id", publishRPC, append(field1([]byte("orders.a")), field2(field1([]byte("id-\xc3")))...)},
		{"invalid UTF-8 batch entry", batchRPC, append(field1([]byte("orders.a")), field2(field1([]byte("\xff")))...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out []byte
			err := conn.Invoke(rpcCtx(t), tt.method, tt.body, &out, grpc.ForceCodecV2(rawCodec{}))
			apitest.WantField(t, apitest.WantCode(t, err, codes.InvalidArgument), "request")
		})
	}
	t.Run("Subscribe", func(t *testing.T) {
		desc := &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}
		stream, err := conn.NewStream(rpcCtx(t), desc, "/eventsidecar.v1.EventSidecar/Subscribe", grpc.ForceCodecV2(rawCodec{}))
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.SendMsg([]byte{0xff, 0xff}); err != nil {
			t.Fatal(err)
		}
		var out []byte
		apitest.WantCode(t, stream.RecvMsg(&out), codes.InvalidArgument)
	})
	if n := h.stored(); n != 0 {
		t.Errorf("stored = %d, want 0", n)
	}
	var out []byte
	if err := conn.Invoke(rpcCtx(t), publishRPC, valid, &out, grpc.ForceCodecV2(rawCodec{})); err != nil {
		t.Fatalf("well-formed request: %v", err)
	}
	var resp eventsidecarv1.PublishResponse
	if err := proto.Unmarshal(out, &resp); err != nil || resp.GetId() != "raw-ok" || resp.GetSequence() != 1 {
		t.Errorf("well-formed request answered %v (%v), want raw-ok stored at 1", &resp, err)
	}
}
