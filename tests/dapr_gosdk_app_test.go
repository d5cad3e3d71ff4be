package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dapr/go-sdk/service/common"
	daprgrpc "github.com/dapr/go-sdk/service/grpc"
	daprhttp "github.com/dapr/go-sdk/service/http"

	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// shipment is what the Go SDK app publishes and subscribes to.
type shipment struct {
	ID   int    `json:"orderId"`
	Kind string `json:"kind"`
}

// goSDKApp is what an unmodified Go SDK service's topic handlers got:
// "<route> <orderId> <kind>" for each delivery, in any order.
type goSDKApp struct {
	mu      sync.Mutex
	got     []string
	retried bool
}

// handler is the topic handler of route: it records each event and asks
// for a retry of the first delivery of a shipment of kind "retry".
func (a *goSDKApp) handler(route string) common.TopicEventHandler {
	return func(_ context.Context, e *common.TopicEvent) (bool, error) {
		var s shipment
		if err := json.Unmarshal(e.RawData, &s); err != nil {
			return false, fmt.Errorf("shipment %q: %w", e.RawData, err)
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		a.got = append(a.got, fmt.Sprintf("%s %d %s", route, s.ID, s.Kind))
		if s.Kind == "retry" && !a.retried {
			a.retried = true
			return true, errors.New("try again")
		}
		return false, nil
	}
}

func (a *goSDKApp) deliveries() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	got := append([]string(nil), a.got...)
	sort.Strings(got)
	return got
}

// subscribe adds the app's subscriptions to svc: the topic shipments at
// /shipments, with a rule sending kind "fast" to /fast.
func (a *goSDKApp) subscribe(t *testing.T, svc common.Service) {
	t.Helper()
	subs := []*common.Subscription{
		{PubsubName: "pubsub", Topic: "shipments", Route: "/shipments"},
		{PubsubName: "pubsub", Topic: "shipments", Route: "/fast", Match: `event.data.kind == "fast"`, Priority: 1},
	}
	for _, sub := range subs {
		if err := svc.AddTopicEventHandler(sub, a.handler(sub.Route)); err != nil {
			t.Fatalf("AddTopicEventHandler %s: %v", sub.Route, err)
		}
	}
}

// runGoSDKApp starts svc until the test ends.
func runGoSDKApp(t *testing.T, svc common.Service) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- svc.Start() }()
	t.Cleanup(func() {
		_ = svc.Stop()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Go SDK service: %v", err)
		}
	})
}

// publishShipments publishes through the Go SDK client once the
// sidecar lists the app's subscription in /v1.0/metadata (its consumer
// is in place), and checks what the app got:
// each shipment at its route, the retried one twice, nothing
// dead-lettered.
func publishShipments(t *testing.T, sc *sidecar, a *goSDKApp) {
	t.Helper()
	name := "e2e-pubsub-shipments"
	poll.Until(t, 30*time.Second, "shipments listed in /v1.0/metadata", func() bool {
		code, body := sc.get("/v1.0/metadata")
		var md struct {
			Subscriptions []struct {
				Topic string `json:"topic"`
			} `json:"subscriptions"`
		}
		if err := json.Unmarshal(body, &md); code != 200 || err != nil {
			t.Fatalf("metadata = %d %s (%v)", code, body, err)
		}
		return len(md.Subscriptions) == 1 && md.Subscriptions[0].Topic == "shipments"
	})
	client := newDaprGoApp(t, sc)
	ctx := publishCtx(t)
	for _, s := range []shipment{{1, "slow"}, {2, "fast"}, {3, "retry"}} {
		if err := client.PublishEvent(ctx, "pubsub", "shipments", s); err != nil {
			t.Fatalf("PublishEvent %+v: %v", s, err)
		}
	}
	want := []string{"/fast 2 fast", "/shipments 1 slow", "/shipments 3 retry", "/shipments 3 retry"}
	poll.Until(t, 30*time.Second, "four deliveries", func() bool { return len(a.deliveries()) >= len(want) })
	if got := a.deliveries(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the app got\n%s\nwant\n%s\nsidecar log:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), sc.log())
	}
	code, body := sc.get("/v1/subscriptions/" + name + "/deadletters")
	var list daprDeadLetters
	if err := json.Unmarshal(body, &list); code != 200 || err != nil || len(list.Deadletters) != 0 {
		t.Errorf("dead letters = %d %s (%v), want none", code, body, err)
	}
}

// TestDaprGoSDKGRPCApp runs the real binary with dapr.app_protocol grpc
// for an unmodified Go SDK gRPC service (service/grpc: a route and a
// routing rule, a handler asking for one retry), the events published
// with the Go SDK client.
func TestDaprGoSDKGRPCApp(t *testing.T) {
	appPort := freePort(t)
	sc := startSidecar(t, withGRPC(embeddedConfig(t.TempDir(), daprAppConfig(appPort)+"  app_protocol: grpc\n")))
	svc, err := daprgrpc.NewService(fmt.Sprintf("127.0.0.1:%d", appPort))
	if err != nil {
		t.Fatalf("grpc.NewService: %v", err)
	}
	a := &goSDKApp{}
	a.subscribe(t, svc)
	runGoSDKApp(t, svc)
	publishShipments(t, sc, a)
}

// TestDaprGoSDKHTTPApp is TestDaprGoSDKGRPCApp for the Go SDK's HTTP
// service (service/http) with dapr.app_protocol http.
func TestDaprGoSDKHTTPApp(t *testing.T) {
	appPort := freePort(t)
	sc := startSidecar(t, withGRPC(embeddedConfig(t.TempDir(), daprAppConfig(appPort)+"  app_protocol: http\n")))
	svc := daprhttp.NewService(fmt.Sprintf("127.0.0.1:%d", appPort))
	a := &goSDKApp{}
	a.subscribe(t, svc)
	runGoSDKApp(t, svc)
	publishShipments(t, sc, a)
}
