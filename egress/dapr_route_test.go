package egress

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventsidecar/eventsidecar/dapr"
	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// typed is newEvent id of type typ.
func typed(id, typ string) *event.Event {
	ev := newEvent(id)
	ev.SetType(typ)
	return ev
}

func TestDaprRoutingRulesAndDefault(t *testing.T) {
	e := newEnv(t)
	a := &daprApp{subscribe: `[{"pubsubname":"pubsub","topic":"shipments","routes":{"rules":[
		{"match":"event.type == \"ship.fast\"","path":"/ship/fast"},
		{"match":"event.data.id == \"e-3\"","path":"/ship/three"}],"default":"/ship/slow"}}]`,
		answer: answering(200, "")}
	r, _ := e.startDapr(a)
	name := daprName("shipments")
	e.delivering(r, name)
	e.publish("shipments", typed("e-1", "ship.fast"), typed("e-2", "ship.slow"), typed("e-3", "ship.slow"))
	e.settled(name)
	paths := map[string]string{}
	for _, req := range a.requests() {
		paths[req.id()] = req.path
	}
	want := map[string]string{"e-1": "/ship/fast", "e-2": "/ship/slow", "e-3": "/ship/three"}
	for id, p := range want {
		if paths[id] != p {
			t.Errorf("%s went to %q, want %q (all: %v)", id, paths[id], p, paths)
		}
	}
}

func TestDaprUnmatchedIsSkipped(t *testing.T) {
	e := newEnv(t)
	a := &daprApp{subscribe: `[{"pubsubname":"pubsub","topic":"orders","routes":{"rules":[
		{"match":"event.type == \"order.created\"","path":"/created"}]}}]`, answer: answering(200, "")}
	r, _ := e.startDapr(a)
	name := daprName("orders")
	e.delivering(r, name)
	e.publish("orders", typed("e-1", "order.deleted"), typed("e-2", "order.created"))
	e.settled(name)
	reqs := a.requests()
	if len(reqs) != 1 || reqs[0].id() != "e-2" {
		t.Errorf("deliveries %v, want only e-2", reqs)
	}
	if dls, err := mustDeadLetters(t, r, name).List(context.Background(), 10); err != nil || len(dls) != 0 {
		t.Errorf("dead letters %d (%v), want none: unmatched events are skipped", len(dls), err)
	}
	if st := stats(t, r, name); st.Delivered != 1 || st.State != StateDelivering {
		t.Errorf("stats %+v", st)
	}
}

func TestDaprUnmatchedAndExpiredAreDeadLettered(t *testing.T) {
	e := newEnv(t)
	a := &daprApp{subscribe: `[{"pubsubname":"pubsub","topic":"orders","deadLetterTopic":"orders-dead","routes":{"rules":[
		{"match":"event.type == \"order.created\"","path":"/created"}]}}]`, answer: answering(200, "")}
	r, _ := e.startDapr(a)
	name := daprName("orders")
	e.delivering(r, name)
	expired := typed("e-3", "order.created")
	expired.SetExtension(dapr.ExpirationExtension, time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))
	fresh := typed("e-4", "order.created")
	fresh.SetExtension(dapr.ExpirationExtension, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	e.publish("orders", typed("e-1", "order.deleted"), typed("e-2", "order.created"), expired, fresh)
	e.settled(name)
	got := map[string]bool{}
	for _, req := range a.requests() {
		got[req.id()] = true
	}
	if len(got) != 2 || !got["e-2"] || !got["e-4"] {
		t.Errorf("delivered %v, want e-2 and e-4", got)
	}
	reasons := map[string]string{}
	for _, dl := range e.deadLetters(r, name, 2) {
		reasons[dl.Event.ID()] = extString(&dl.Event, ExtDLQReason) + "/" + extString(&dl.Event, ExtDLQAttempts)
	}
	if reasons["e-1"] != "no route matched/0" || len(reasons["e-3"]) < len("expired at ") || reasons["e-3"][:11] != "expired at " {
		t.Errorf("dead letters %v, want e-1 unrouted and e-3 expired, with no attempt", reasons)
	}
}

func TestDaprRawDelivery(t *testing.T) {
	e := newEnv(t)
	a := &daprApp{subscribe: `[{"pubsubname":"pubsub","topic":"payments","metadata":{"rawPayload":"\"true\""},"route":"/pay"}]`,
		answer: answering(200, "")}
	r, _ := e.startDapr(a)
	name := daprName("payments")
	e.delivering(r, name)
	e.publish("payments", newEvent("e-1"))
	e.settled(name)
	reqs := a.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d deliveries, want 1", len(reqs))
	}
	env := reqs[0].envelope
	want := map[string]any{"data_base64": base64.StdEncoding.EncodeToString([]byte(`{"id":"e-1"}`)),
		"datacontenttype": "application/octet-stream", "id": "e-1", "source": "/test", "type": "com.example.test",
		"topic": "payments", "pubsubname": "pubsub", "specversion": "1.0"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("raw envelope %s = %v, want %v (%s)", k, env[k], v, reqs[0].body)
		}
	}
	if _, ok := env["data"]; ok {
		t.Errorf("raw envelope has data: %s", reqs[0].body)
	}
}

func TestDaprSubscriptionsNotServed(t *testing.T) {
	e := newEnv(t)
	a := &daprApp{subscribe: `[{"pubsubname":"pubsub","topic":"bulk","route":"/bulk","bulkSubscribe":{"enabled":true}},
		{"pubsubname":"other","topic":"orders","route":"/orders"},
		{"pubsubname":"pubsub","topic":"a/b","route":"/ab"},
		{"pubsubname":"pubsub","topic":"orders","route":"/orders","deadLetterTopic":"_mine"}]`, answer: answering(200, "")}
	r, _ := e.startDapr(a)
	if all := r.Stats(context.Background()); len(all) != 1 || all[0].Name != daprName("bulk") {
		t.Fatalf("subscriptions %+v, want only the bulk one", all)
	}
	name := daprName("bulk")
	e.delivering(r, name)
	e.publish("bulk", newEvent("e-1"))
	poll.Until(t, 10*time.Second, "the event pending for the bulk subscription", func() bool {
		info := e.consumer(name)
		return info.NumPending == 1
	})
	st := stats(t, r, name)
	if st.State != StatePaused || st.StateReason != reasonBulk || st.Pending != 1 {
		t.Errorf("stats %+v, want paused: %s, 1 pending", st, reasonBulk)
	}
	if n := len(a.requests()); n != 0 {
		t.Errorf("%d deliveries to a bulk subscription, want none", n)
	}
	if listed := r.DaprSubscriptions(); len(listed) != 0 {
		t.Errorf("DaprSubscriptions = %+v, want none served", listed)
	}
}

// An event no rule matched because a rule failed to evaluate is not known
// to be unwanted: it is dead-lettered, naming the error, not skipped.
func TestDaprRuleThatFailsToEvaluateDeadLetters(t *testing.T) {
	e := newEnv(t)
	a := &daprApp{subscribe: `[{"pubsubname":"pubsub","topic":"orders","routes":{"rules":[
		{"match":"event.data.total > 100","path":"/big"}]}}]`, answer: answering(200, "")}
	r, _ := e.startDapr(a)
	name := daprName("orders")
	e.delivering(r, name)
	e.publish("orders", typed("e-1", "order.created")) // its data has no total
	e.settled(name)
	if reqs := a.requests(); len(reqs) != 0 {
		t.Errorf("deliveries %v, want none", reqs)
	}
	dls := e.deadLetters(r, name, 1)
	if reason := extString(&dls[0].Event, ExtDLQReason); !strings.HasPrefix(reason, "no route matched; a rule failed to evaluate: ") {
		t.Errorf("dlqreason %q, want the evaluation error named", reason)
	}
}
