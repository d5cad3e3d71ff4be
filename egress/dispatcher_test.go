package egress

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/internal/poll"
)

func TestDeliversInBothModes(t *testing.T) {
	e := newEnv(t)
	bin := newReceiver(t, always(200))
	str := newReceiver(t, always(204))
	structured := testSub("structured", "orders.>", str.URL)
	structured.ContentMode = "structured"
	e.start(testSub("binary", "orders.>", bin.URL), structured)
	want := newEvent("e-1", "tenant", "acme")
	e.publish("orders.created", want)
	e.settled("binary")
	e.settled("structured")
	for name, rc := range map[string]*receiver{"binary": bin, "structured": str} {
		t.Run(name, func(t *testing.T) {
			reqs := rc.requests()
			if len(reqs) != 1 {
				t.Fatalf("requests = %d, want 1", len(reqs))
			}
			r, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(string(reqs[0].body)))
			r.Header = reqs[0].header
			got, err := binding.ToEvent(context.Background(), cehttp.NewMessageFromHttpRequest(r))
			if err != nil {
				t.Fatalf("parse delivery: %v", err)
			}
			if got.ID() != want.ID() || got.Source() != want.Source() || got.Type() != want.Type() ||
				string(got.Data()) != string(want.Data()) || got.Extensions()["tenant"] != "acme" {
				t.Errorf("delivered %v, want %v", got, want)
			}
			if a := reqs[0].header.Get("eventsidecar-attempt"); a != "1" {
				t.Errorf("eventsidecar-attempt = %q, want 1", a)
			}
		})
	}
}

// TestRetriesThenDelivers has one event fail on its own: it retries, each
// attempt counting (two 503s in a row would mean that the app is down).
func TestRetriesThenDelivers(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(n int, _ *http.Request) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	r := e.start(testSub("s", "orders.>", rc.URL))
	e.publish("orders.created", newEvent("e-1"))
	e.settled("s")
	var attempts []string
	for _, req := range rc.requests() {
		attempts = append(attempts, req.header.Get("eventsidecar-attempt"))
	}
	if strings.Join(attempts, ",") != "1,2,3" {
		t.Errorf("attempts = %v, want 1,2,3", attempts)
	}
	if st := r.Stats(context.Background())[0]; st.Delivered != 1 || st.Retried != 2 || st.DeadLettered != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestAnswersThatDeadLetterAtOnce(t *testing.T) {
	for _, status := range []int{400, 404, 410, 415} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			e := newEnv(t)
			rc := newReceiver(t, always(status))
			sub := testSub("s", "orders.>", rc.URL)
			r := e.start(sub)
			e.publish("orders.created", newEvent("e-1"))
			e.settled("s")
			if n := rc.count(); n != 1 {
				t.Errorf("attempts = %d, want 1", n)
			}
			dl := e.deadLetters(r, "s", 1)[0]
			wantExt := map[string]string{"dlqstatus": strconv.Itoa(status), "dlqattempts": "1", "dlqsubscription": "s"}
			for k, v := range wantExt {
				if got := fmt.Sprint(dl.Event.Extensions()[k]); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if dl.Event.ID() != "e-1" || string(dl.Event.Data()) != `{"id":"e-1"}` {
				t.Errorf("dead letter %v is not the original event", dl.Event)
			}
			if r.Stats(context.Background())[0].DeadLettered != 1 {
				t.Errorf("stats = %+v", r.Stats(context.Background())[0])
			}
		})
	}
}

func (e *env) deadLetters(r *running, name string, want int) []DeadLetter {
	e.t.Helper()
	store, err := r.DeadLetters(name)
	if err != nil {
		e.t.Fatal(err)
	}
	var dls []DeadLetter
	poll.Until(e.t, 10*time.Second, fmt.Sprintf("%d dead letters", want), func() bool {
		dls, err = store.List(context.Background(), 100)
		return err == nil && len(dls) == want
	})
	return dls
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, always(500))
	sub := testSub("s", "orders.>", rc.URL)
	sub.Retry.MaxAttempts = 3
	r := e.start(sub)
	e.publish("orders.created", newEvent("e-1"))
	e.settled("s")
	if n := rc.count(); n != 3 {
		t.Errorf("attempts = %d, want 3", n)
	}
	dl := e.deadLetters(r, "s", 1)[0]
	if reason := fmt.Sprint(dl.Event.Extensions()["dlqreason"]); !strings.Contains(reason, "gave up after 3 attempts") {
		t.Errorf("dlqreason = %q", reason)
	}
}

func TestFailedDeadLetterLeavesOriginalUnacknowledged(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, always(400))
	r := e.start(testSub("s", "orders.>", rc.URL))
	ctx := context.Background()
	js := e.b.JetStream()
	stream, err := js.Stream(ctx, e.cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The stream takes one more message: the event, not its dead letter.
	limited := info.Config
	limited.MaxMsgs, limited.Discard = int64(info.State.Msgs)+1, jetstream.DiscardNew
	if _, err := js.UpdateStream(ctx, limited); err != nil {
		t.Fatalf("limit the stream: %v", err)
	}
	e.publish("orders.created", newEvent("e-1"))
	poll.Until(t, 10*time.Second, "the event comes back after its dead letter failed", func() bool { return rc.count() >= 2 })
	if c := e.consumer("s"); c.NumAckPending == 0 {
		t.Errorf("consumer %+v: the original was acknowledged without its dead letter", c)
	}
	limited.MaxMsgs = -1
	if _, err := js.UpdateStream(ctx, limited); err != nil {
		t.Fatalf("lift the limit: %v", err)
	}
	e.settled("s")
	e.deadLetters(r, "s", 1)
}

func TestDeliveredOnceAcrossTopics(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, always(200))
	e.start(testSub("s", "orders.>", rc.URL))
	ev := newEvent("same")
	e.publish("orders.a", ev)
	e.settled("s")
	e.publish("orders.b", ev)
	e.settled("s")
	if n := rc.count(); n != 1 {
		t.Errorf("the app got the event %d times, want 1", n)
	}
}

func TestTypesFilter(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, always(200))
	sub := testSub("s", "orders.>", rc.URL)
	sub.Types = []string{"com.example.wanted"}
	e.start(sub)
	wanted := newEvent("w")
	wanted.SetType("com.example.wanted")
	e.publish("orders.a", newEvent("other"), wanted)
	e.settled("s")
	reqs := rc.requests()
	if len(reqs) != 1 || reqs[0].header.Get("ce-id") != "w" {
		t.Errorf("delivered %d requests, want only the wanted type", len(reqs))
	}
}

func TestReplayReachesOneSubscription(t *testing.T) {
	e := newEnv(t)
	var failA sync.Once
	a := newReceiver(t, func(int, *http.Request) int {
		status := 200
		failA.Do(func() { status = 400 })
		return status
	})
	b := newReceiver(t, always(200))
	r := e.start(testSub("a", "orders.>", a.URL), testSub("b", "orders.>", b.URL))
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	ev := newEvent("x")
	rc := e.b.Publish(context.Background(), []broker.Message{{Topic: "orders.created", Event: ev, MsgID: "x",
		TraceParent: "00-" + traceID + "-00f067aa0ba902b7-01"}})[0]
	if rc.Err != nil {
		t.Fatal(rc.Err)
	}
	e.deadLetters(r, "a", 1)
	e.settled("b")
	store, _ := r.DeadLetters("a")
	if n, err := store.Replay(context.Background(), nil); n != 1 || err != nil {
		t.Fatalf("replay = %d, %v", n, err)
	}
	poll.Until(t, 10*time.Second, "the replay reaches a", func() bool { return a.count() == 2 })
	e.settled("a")
	e.settled("b")
	if n := b.count(); n != 1 {
		t.Errorf("b got %d deliveries, want 1 (the replay is for a only)", n)
	}
	if tp := a.requests()[1].header.Get("traceparent"); !strings.Contains(tp, traceID) {
		t.Errorf("replayed delivery traceparent %q is not in the publisher's trace %s", tp, traceID)
	}
	if dls, _ := store.List(context.Background(), 10); len(dls) != 0 {
		t.Errorf("dead letters after replay: %d", len(dls))
	}
}

func TestShutdownHandsBackUnstartedEvents(t *testing.T) {
	e := newEnv(t)
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	first := newReceiver(t, func(int, *http.Request) int {
		entered <- struct{}{}
		<-release
		return 200
	})
	sub := testSub("s", "orders.>", first.URL)
	sub.MaxInFlight = 1
	r := e.start(sub)
	e.publish("orders.a", newEvent("1"), newEvent("2"), newEvent("3"))
	<-entered
	r.cancel() // the stop has begun before the delivery in flight ends
	close(release)
	if err := r.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if n := first.count(); n != 1 {
		t.Errorf("first sidecar made %d deliveries, want 1 (the one in flight)", n)
	}
	second := newReceiver(t, always(200))
	sub.Endpoint = second.URL
	e.start(sub)
	// The ack wait is far longer than this: only a Nak brings them back so soon.
	poll.Until(t, ackWait(sub)/2, "the other events reach the next sidecar", func() bool { return second.count() == 2 })
	e.settled("s")
}

func TestSteadyFlowAtMaxInFlightOne(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, always(200))
	sub := testSub("s", "orders.>", rc.URL)
	sub.MaxInFlight = 1
	e.start(sub)
	const n = 1500
	evs := make([]*event.Event, n)
	for i := range evs {
		evs[i] = newEvent(fmt.Sprint(i))
	}
	e.publish("orders.a", evs...)
	poll.Until(t, 25*time.Second, "every event delivered without a stall", func() bool { return rc.count() == n })
}
