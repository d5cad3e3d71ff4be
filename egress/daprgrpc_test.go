package egress

import (
	"context"
	"strings"
	"testing"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/poll"
	"github.com/eventsidecar/eventsidecar/internal/syncbuf"
)

// grpcOrders subscribes to orders with no routes (the topic handler, path
// ""), as the Go SDK lists a plain route.
var grpcOrders = []*runtimev1.TopicSubscription{{PubsubName: "pubsub", Topic: "orders"}}

// TestDaprGRPCDeliveryRequestAndMetadata: OnTopicEvent gets Dapr's
// TopicEventRequest (attributes, data, path "", the other envelope
// members as extensions) with the metadata pubsubname, topic and
// traceparent.
func TestDaprGRPCDeliveryRequestAndMetadata(t *testing.T) {
	e := newEnv(t)
	a := &grpcApp{subs: grpcOrders, answer: answeringStatus(runtimev1.TopicEventResponse_SUCCESS)}
	r := e.startGRPCDapr(a)
	name := daprName("orders")
	e.delivering(r, name)
	e.publish("orders", newEvent("e-1", "partitionkey", "k1"))
	e.settled(name)
	calls := a.received()
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	req, md := calls[0].req, calls[0].md
	if req.GetId() != "e-1" || req.GetSource() != "/test" || req.GetType() != "com.example.test" || req.GetSpecVersion() != "1.0" ||
		req.GetDataContentType() != "application/json" || string(req.GetData()) != `{"id":"e-1"}` ||
		req.GetTopic() != "orders" || req.GetPubsubName() != "pubsub" || req.GetPath() != "" {
		t.Errorf("request %v", req)
	}
	ext := req.GetExtensions().AsMap()
	for member, want := range map[string]any{"topic": "orders", "pubsubname": "pubsub", "partitionkey": "k1",
		"time": "2024-05-06T07:08:09Z"} {
		if ext[member] != want {
			t.Errorf("extension %s = %v, want %v", member, ext[member], want)
		}
	}
	parent, _ := ext["traceparent"].(string)
	if len(parent) != 55 || ext["traceid"] != parent {
		t.Errorf("extensions traceparent %q, traceid %v: want one W3C traceparent in both", parent, ext["traceid"])
	}
	for key, want := range map[string]string{"pubsubname": "pubsub", "topic": "orders", "eventsidecar-attempt": "1"} {
		if got := md.Get(key); len(got) != 1 || got[0] != want {
			t.Errorf("metadata %s = %v, want %q", key, got, want)
		}
	}
	if h := md.Get("traceparent"); len(h) != 1 || len(h[0]) != 55 || h[0][3:35] != parent[3:35] {
		t.Errorf("metadata traceparent %v is not in the envelope's trace %q", h, parent)
	}
	st := stats(t, r, name)
	if st.Delivered != 1 || st.State != StateDelivering || !strings.HasPrefix(st.Endpoint, "grpc://127.0.0.1:") {
		t.Errorf("stats %+v", st)
	}
	if listed := r.DaprSubscriptions(); len(listed) != 1 || listed[0].Topic != "orders" {
		t.Errorf("DaprSubscriptions = %+v, want orders", listed)
	}
}

// TestDaprGRPCRoutes: the rules ListTopicSubscriptions gave route each
// event, the path passed as the app gave it.
func TestDaprGRPCRoutes(t *testing.T) {
	e := newEnv(t)
	a := &grpcApp{answer: answeringStatus(runtimev1.TopicEventResponse_SUCCESS), subs: []*runtimev1.TopicSubscription{{
		PubsubName: "pubsub", Topic: "ships", Routes: &runtimev1.TopicRoutes{
			Rules:   []*runtimev1.TopicRule{{Match: `event.type == "fast"`, Path: "fast"}},
			Default: "/slow",
		}}}}
	r := e.startGRPCDapr(a)
	name := daprName("ships")
	e.delivering(r, name)
	fast := newEvent("e-fast")
	fast.SetType("fast")
	e.publish("ships", fast, newEvent("e-slow"))
	e.settled(name)
	got := map[string]string{}
	for _, c := range a.received() {
		got[c.req.GetId()] = c.req.GetPath()
	}
	if got["e-fast"] != "fast" || got["e-slow"] != "/slow" || len(got) != 2 {
		t.Errorf("paths %v, want e-fast at fast and e-slow at /slow", got)
	}
}

// TestDaprGRPCAnswers is Dapr's answer contract for gRPC apps as the
// sidecar applies it (contract §9): DROP and the error Unimplemented
// dead-letter at once, RETRY and other errors retry, SUCCESS delivers.
func TestDaprGRPCAnswers(t *testing.T) {
	tests := []struct {
		name         string
		answer       grpcAnswer
		wantAttempts int
		wantReason   string // the start of the dead letter's; "" for none
	}{
		{"SUCCESS", answeringStatus(runtimev1.TopicEventResponse_SUCCESS), 1, ""},
		{"RETRY once then SUCCESS", func(_ string, n int) (*runtimev1.TopicEventResponse, error) {
			if n == 1 {
				return &runtimev1.TopicEventResponse{Status: runtimev1.TopicEventResponse_RETRY}, nil
			}
			return &runtimev1.TopicEventResponse{}, nil
		}, 2, ""},
		{"Unknown error then SUCCESS", firstError(status.Error(codes.Unknown, "handler failed")), 2, ""},
		{"DROP", answeringStatus(runtimev1.TopicEventResponse_DROP), 1, "app answered DROP"},
		{"Unimplemented", firstError(status.Error(codes.Unimplemented, "no handler")), 1, "gRPC Unimplemented: no handler"},
		{"unknown status for ever", answeringStatus(9), 3, "gave up after 3 attempts: app asked for a retry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			a := &grpcApp{subs: grpcOrders, answer: tt.answer}
			r := e.startGRPCDapr(a, func(c *config.Config) { c.Dapr.Subscription.Retry.MaxAttempts = 3 })
			name := daprName("orders")
			e.delivering(r, name)
			e.publish("orders", newEvent("e-1"))
			e.settled(name)
			if n := len(a.received()); n != tt.wantAttempts {
				t.Errorf("%d attempts, want %d", n, tt.wantAttempts)
			}
			if tt.wantReason == "" {
				if dls, err := mustDeadLetters(t, r, name).List(context.Background(), 10); err != nil || len(dls) != 0 {
					t.Errorf("dead letters %d (%v), want none", len(dls), err)
				}
				return
			}
			e.deadLetters(r, name, 1)
			dls := listedDeadLetters(e, r, name)
			if len(dls) != 1 {
				t.Fatalf("%d dead letters listed, want 1", len(dls))
			}
			if dl := dls[0]; !strings.HasPrefix(dl.Reason, tt.wantReason) || dl.Attempts != tt.wantAttempts {
				t.Errorf("dead letter %+v, want reason %q, %d attempts", dl, tt.wantReason, tt.wantAttempts)
			}
		})
	}
}

// TestDaprGRPCAppDownPausesAndLosesNothing: while the gRPC app refuses
// connections, discovery waits and a declarative subscription's circuit
// holds its events (none dead-lettered, although max_attempts is 2); once
// the app is up (ListTopicSubscriptions Unimplemented: none), every event
// is delivered.
func TestDaprGRPCAppDownPausesAndLosesNothing(t *testing.T) {
	e := newEnv(t)
	addr := freeAddr(t)
	cfg := grpcConfig(t, addr)
	cfg.Dapr.Subscription.Retry.MaxAttempts = 2
	app := closingDaprApp(t, cfg, &syncbuf.Buffer{})
	r := e.start()
	done := runDapr(t, r, app, declared(t))
	name := daprName("orders")
	e.delivering(r, name)
	e.publish("orders", newEvent("e-1"), newEvent("e-2"), newEvent("e-3"))
	poll.Until(t, 10*time.Second, "paused: Unavailable", func() bool {
		st := stats(t, r, name)
		return st.State == StatePaused && strings.Contains(st.StateReason, "Unavailable")
	})
	if dls, err := mustDeadLetters(t, r, name).List(context.Background(), 10); err != nil || len(dls) != 0 {
		t.Fatalf("dead letters %d (%v) while the app is down, want none", len(dls), err)
	}
	a := &grpcApp{answer: answeringStatus(runtimev1.TopicEventResponse_SUCCESS)}
	a.serve(t, addr)
	<-done
	e.settled(name)
	got := map[string]bool{}
	for _, c := range a.received() {
		got[c.req.GetId()] = true
	}
	if len(got) != 3 {
		t.Errorf("delivered %v, want e-1, e-2 and e-3", got)
	}
	if dls, err := mustDeadLetters(t, r, name).List(context.Background(), 10); err != nil || len(dls) != 0 {
		t.Errorf("dead letters %d (%v), want none", len(dls), err)
	}
	if st := stats(t, r, name); st.State != StateDelivering || st.Delivered != 3 {
		t.Errorf("stats %+v, want delivering, 3 delivered", st)
	}
}
