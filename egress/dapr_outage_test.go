package egress

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/dapr"
	"github.com/eventsidecar/eventsidecar/dedup"
	"github.com/eventsidecar/eventsidecar/internal/poll"
	"github.com/eventsidecar/eventsidecar/internal/syncbuf"
)

// declared is the declarative subscription of orders to /orders, read
// from a resources directory.
func declared(t *testing.T) []dapr.Subscription {
	t.Helper()
	dir := t.TempDir()
	yaml := "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: orders}\n" +
		"spec: {pubsubname: pubsub, topic: orders, routes: {default: /orders}}\n"
	if err := os.WriteFile(filepath.Join(dir, "orders.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	subs, err := dapr.LoadResources(dir, daprAppID)
	if err != nil {
		t.Fatal(err)
	}
	return subs
}

// runDapr runs RunDapr in the background; the channel is closed when it
// returns.
func runDapr(t *testing.T, r *running, app *DaprApp, subs []dapr.Subscription) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.RunDapr(ctx, app, subs)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return done
}

// TestDaprAppDownPausesAndLosesNothing: while the app refuses
// connections, a declarative subscription's circuit holds its events
// (none dead-lettered, although max_attempts is 2); once the app is up,
// every event is delivered.
func TestDaprAppDownPausesAndLosesNothing(t *testing.T) {
	e := newEnv(t)
	addr := freeAddr(t)
	cfg := daprConfig(t, addr)
	cfg.Dapr.Subscription.Retry.MaxAttempts = 2
	r := e.start()
	done := runDapr(t, r, newDaprApp(t, cfg, &syncbuf.Buffer{}), declared(t))
	name := daprName("orders")
	e.delivering(r, name)
	e.publish("orders", newEvent("e-1"), newEvent("e-2"), newEvent("e-3"))
	poll.Until(t, 10*time.Second, "paused: connection refused", func() bool {
		st := stats(t, r, name)
		return st.State == StatePaused && strings.Contains(st.StateReason, "connection refused")
	})
	if dls, err := mustDeadLetters(t, r, name).List(context.Background(), 10); err != nil || len(dls) != 0 {
		t.Fatalf("dead letters %d (%v) while the app is down, want none", len(dls), err)
	}
	a := &daprApp{answer: answering(200, `{"status":"SUCCESS"}`)}
	a.serve(t, addr)
	<-done // the app answered GET /dapr/subscribe with 404: no programmatic subscriptions
	e.settled(name)
	got := map[string]bool{}
	for _, req := range a.requests() {
		got[req.id()] = true
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
	if listed := r.DaprSubscriptions(); len(listed) != 1 || listed[0].Kind != dapr.Declarative {
		t.Errorf("DaprSubscriptions = %+v, want the declarative one", listed)
	}
}

// TestDaprDiscoveryWaitsForTheApp: GET /dapr/subscribe is asked again
// while the app is not up, and after an answer it cannot use (500); then
// the subscriptions are attached and delivered.
func TestDaprDiscoveryWaitsForTheApp(t *testing.T) {
	e := newEnv(t)
	addr := freeAddr(t)
	r := e.start()
	log := &syncbuf.Buffer{}
	done := runDapr(t, r, newDaprApp(t, daprConfig(t, addr), log), nil)
	poll.Until(t, 10*time.Second, "waiting for the app logged", func() bool {
		return strings.Contains(log.String(), "waiting for the Dapr app to list its subscriptions")
	})
	if len(r.Stats(context.Background())) != 0 {
		t.Fatalf("subscriptions before the app answered: %+v", r.Stats(context.Background()))
	}
	a := &daprApp{subscribe: ordersSubscribe, subscribeFirst: 500, answer: answering(200, "")}
	a.serve(t, addr)
	<-done
	if !strings.Contains(log.String(), "could not be read") {
		t.Errorf("the 500 was not logged:\n%s", log)
	}
	name := daprName("orders")
	e.delivering(r, name)
	e.publish("orders", newEvent("e-1"))
	e.settled(name)
	if reqs := a.requests(); len(reqs) != 1 || reqs[0].id() != "e-1" {
		t.Errorf("deliveries %v, want e-1", reqs)
	}
	a.mu.Lock()
	asked := a.asked
	a.mu.Unlock()
	if asked != 2 {
		t.Errorf("GET /dapr/subscribe asked %d times, want 2", asked)
	}
}

// TestDaprIdempotentResendDeliveredOnce: the same event (source and id)
// stored twice, as another message, reaches the app once.
func TestDaprIdempotentResendDeliveredOnce(t *testing.T) {
	e := newEnv(t)
	a := &daprApp{subscribe: ordersSubscribe, answer: answering(200, "")}
	r, _ := e.startDapr(a)
	name := daprName("orders")
	e.delivering(r, name)
	e.publish("orders", newEvent("e-1"))
	e.settled(name)
	ev := newEvent("e-1")
	resend := broker.Message{Topic: "orders", Event: ev, MsgID: dedup.MsgID("orders", "another key", ev), Fingerprint: dedup.Fingerprint(ev)}
	receipt := e.b.Publish(context.Background(), []broker.Message{resend})[0]
	if receipt.Err != nil || receipt.Duplicate {
		t.Fatalf("resend: %+v, want stored again", receipt)
	}
	e.mu.Lock()
	e.stored = append(e.stored, storedEvent{subject: e.b.Subject("orders"), seq: receipt.Sequence})
	e.mu.Unlock()
	e.settled(name)
	if n := len(a.requests()); n != 1 {
		t.Errorf("%d deliveries of the same source and id, want 1", n)
	}
}
