package tests

import (
	"context"
	"path"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/dapr/go-sdk/client"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsidecar/eventsidecar/wire"
)

// order is what the Go SDK sample publishes as a struct.
type order struct {
	ID   int    `json:"orderId"`
	Item string `json:"item"`
}

// daprGoApp is an app's Dapr Go SDK client (github.com/dapr/go-sdk
// v1.15.0), unmodified, connected to the sidecar's gRPC listener the way
// an app connects to Dapr's: by address, the SDK reading DAPR_API_TOKEN
// and DAPR_CLIENT_TIMEOUT_SECONDS itself. methods are the Dapr API methods
// it called, in order, seen by an interceptor chained after the SDK's own.
type daprGoApp struct {
	client.Client
	methods []string
}

// newDaprGoApp connects a daprGoApp to sc's gRPC listener.
func newDaprGoApp(t *testing.T, sc *sidecar) *daprGoApp {
	t.Helper()
	t.Setenv("DAPR_CLIENT_TIMEOUT_SECONDS", "30")
	app := &daprGoApp{}
	record := grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any,
		cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		app.methods = append(app.methods, path.Base(method))
		return invoker(ctx, method, req, reply, cc, opts...)
	})
	c, err := client.NewClientWithAddressContext(t.Context(), sc.grpcAddress(), record)
	if err != nil {
		t.Fatalf("dapr go-sdk client: %v", err)
	}
	t.Cleanup(c.Close)
	app.Client = c
	return app
}

// grpcAddress is the gRPC listener's host:port from the sidecar's log.
func (s *sidecar) grpcAddress() string {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grpcAddr == "" {
		s.t.Fatalf("no gRPC listener in the log:\n%s", s.stderr.String())
	}
	return s.grpcAddr
}

// publishCtx bounds the SDK calls of one test.
func publishCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// storedEvent is what one stored event must hold; an empty id is any
// non-empty id.
type storedEvent struct{ id, source, typ, contentType, data string }

// wantStored fails t unless events are want, in order.
func wantStored(t *testing.T, events []event.Event, want []storedEvent) {
	t.Helper()
	if len(events) != len(want) {
		t.Fatalf("%d events stored, want %d: %v", len(events), len(want), events)
	}
	for i, w := range want {
		ev := events[i]
		if (w.id != "" && ev.ID() != w.id) || ev.ID() == "" || ev.Source() != w.source || ev.Type() != w.typ ||
			ev.DataContentType() != w.contentType || string(ev.Data()) != w.data {
			t.Errorf("event %d = %s %s %s %q %q, want %+v", i, ev.ID(), ev.Source(), ev.Type(), ev.DataContentType(), ev.Data(), w)
		}
	}
}

// wantDaprStatus fails t unless err (as the SDK wraps it) carries a gRPC
// status of code with an ErrorInfo of reason.
func wantDaprStatus(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("error = %v, want gRPC code %s", err, code)
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == reason {
			return
		}
	}
	t.Errorf("status %v has no ErrorInfo with reason %s", st.Proto(), reason)
}

// TestDaprGoSDKPublish publishes through the real binary with the Dapr Go
// SDK's client: PublishEvent of a struct, a string and bytes, with
// rawPayload and with cloudevent.* metadata (a resend is stored once),
// and PublishEvents, which calls BulkPublishEvent and maps a failed entry
// back to its event; it checks what the broker stored.
func TestDaprGoSDKPublish(t *testing.T) {
	sc := startSidecar(t, withGRPC(embeddedConfig(t.TempDir(), "")))
	app := newDaprGoApp(t, sc)
	ctx := publishCtx(t)
	octets := []byte{0x00, 0xff, 0x10, 'b', 'i', 'n'}
	overrides := client.PublishEventWithMetadata(map[string]string{
		"cloudevent.id": "order-5", "cloudevent.source": "/shop", "cloudevent.type": "order.created"})
	publishes := []struct {
		name string
		data any
		opts []client.PublishEventOption
	}{
		{"struct", order{ID: 1, Item: "book"}, nil},
		{"string", "hello", nil},
		{"bytes", octets, nil},
		{"raw struct", order{ID: 4, Item: "pen"}, []client.PublishEventOption{client.PublishEventWithRawPayload()}},
		{"metadata", "five", []client.PublishEventOption{overrides}},
		{"metadata resend", "five", []client.PublishEventOption{overrides}},
	}
	for _, p := range publishes {
		if err := app.PublishEvent(ctx, "pubsub", "orders", p.data, p.opts...); err != nil {
			t.Fatalf("PublishEvent %s: %v", p.name, err)
		}
	}
	app.methods = nil
	if resp := app.PublishEvents(ctx, "pubsub", "orders", []any{order{ID: 6, Item: "ink"}, "seven", []byte("eight")}); resp.Error != nil || len(resp.FailedEvents) != 0 {
		t.Fatalf("PublishEvents = %v, failed %v", resp.Error, resp.FailedEvents)
	}
	if want := []string{"BulkPublishEvent"}; !reflect.DeepEqual(app.methods, want) {
		t.Errorf("PublishEvents called %v, want %v", app.methods, want)
	}
	conflict := client.PublishEventsEvent{EntryID: "conflict", Data: []byte("not five"), ContentType: "text/plain",
		Metadata: map[string]string{"cloudevent.id": "order-5", "cloudevent.source": "/shop"}}
	resp := app.PublishEvents(ctx, "pubsub", "orders", []any{conflict, "nine"})
	if resp.Error == nil || !reflect.DeepEqual(resp.FailedEvents, []any{conflict}) {
		t.Errorf("PublishEvents with a conflicting id = %v, failed %v; want only the conflicting entry failed", resp.Error, resp.FailedEvents)
	}

	wantStored(t, sc.storedEvents(), []storedEvent{
		{"", "e2e", "com.dapr.event.sent", "application/json", `{"orderId":1,"item":"book"}`},
		{"", "e2e", "com.dapr.event.sent", "text/plain", "hello"},
		{"", "e2e", "com.dapr.event.sent", "text/plain", string(octets)},
		{"", "/eventsidecar/e2e", wire.RawType, "application/json", `{"orderId":4,"item":"pen"}`},
		{"order-5", "/shop", "order.created", "text/plain", "five"},
		{"", "e2e", "com.dapr.event.sent", "application/json", `{"orderId":6,"item":"ink"}`},
		{"", "e2e", "com.dapr.event.sent", "text/plain", "seven"},
		{"", "e2e", "com.dapr.event.sent", "application/octet-stream", "eight"},
		{"", "e2e", "com.dapr.event.sent", "text/plain", "nine"},
	})
}

// TestDaprGoSDKErrors checks the errors the Go SDK's client returns from
// the real binary for a pub/sub name outside dapr.pubsub_names and a topic
// outside scopes.publish, single and bulk, and that nothing is stored.
func TestDaprGoSDKErrors(t *testing.T) {
	sc := startSidecar(t, withGRPC(embeddedConfig(t.TempDir(), "scopes:\n  publish: [orders]\n")))
	app := newDaprGoApp(t, sc)
	ctx := publishCtx(t)
	tests := []struct {
		name, pubsub, topic string
		code                codes.Code
		reason              string
	}{
		{"unknown pubsub", "kafka", "orders", codes.InvalidArgument, "DAPR_PUBSUB_NOT_FOUND"},
		{"topic outside scopes", "pubsub", "audit", codes.PermissionDenied, "DAPR_PUBSUB_FORBIDDEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantDaprStatus(t, app.PublishEvent(ctx, tt.pubsub, tt.topic, order{ID: 1}), tt.code, tt.reason)
			events := []any{order{ID: 2}, "three"}
			resp := app.PublishEvents(ctx, tt.pubsub, tt.topic, events)
			wantDaprStatus(t, resp.Error, tt.code, tt.reason)
			if !reflect.DeepEqual(resp.FailedEvents, events) {
				t.Errorf("PublishEvents failed %v, want all of %v", resp.FailedEvents, events)
			}
		})
	}
	if n := msgCount(t, stream(t, sc.natsURL)); n != 0 {
		t.Errorf("%d events stored, want none", n)
	}
}

// TestDaprGoSDKToken runs the real binary with http.api_token: the Go
// SDK's client publishes with that token in DAPR_API_TOKEN, and fails
// Unauthenticated with another one or none.
func TestDaprGoSDKToken(t *testing.T) {
	cfg := strings.Replace(embeddedConfig(t.TempDir(), ""), "http:\n  listen: 127.0.0.1:0\n",
		"http:\n  listen: 127.0.0.1:0\n  api_token: s3cret\n", 1)
	sc := startSidecar(t, withGRPC(cfg))
	ctx := publishCtx(t)
	for _, token := range []string{"wrong", ""} {
		t.Setenv("DAPR_API_TOKEN", token)
		err := newDaprGoApp(t, sc).PublishEvent(ctx, "pubsub", "orders", "refused")
		if st, _ := status.FromError(err); st.Code() != codes.Unauthenticated {
			t.Errorf("DAPR_API_TOKEN=%q: PublishEvent = %v, want Unauthenticated", token, err)
		}
	}
	t.Setenv("DAPR_API_TOKEN", "s3cret")
	if err := newDaprGoApp(t, sc).PublishEvent(ctx, "pubsub", "orders", "accepted"); err != nil {
		t.Fatalf("DAPR_API_TOKEN=s3cret: PublishEvent: %v", err)
	}
	wantStored(t, sc.storedEvents(), []storedEvent{{"", "e2e", "com.dapr.event.sent", "text/plain", "accepted"}})
}
