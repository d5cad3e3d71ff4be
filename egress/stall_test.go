package egress

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// TestConsumerRecreatedResumesDelivery deletes and recreates the
// subscription's consumer under a running dispatcher, as a broker that
// lost its state does: the pull iterator ends, and the dispatcher
// consumes again.
func TestConsumerRecreatedResumesDelivery(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, always(200))
	sub := testSub("s", "orders.>", rc.URL)
	e.start(sub)
	e.publish("orders.a", newEvent("before"))
	e.settled("s")

	ctx := context.Background()
	if err := e.b.JetStream().DeleteConsumer(ctx, e.cfg.Stream, "s"); err != nil {
		t.Fatalf("delete the consumer: %v", err)
	}
	if _, err := ensureConsumer(ctx, e.b, sub, 0); err != nil {
		t.Fatalf("recreate the consumer: %v", err)
	}
	e.publish("orders.a", newEvent("after"))
	poll.Until(t, 30*time.Second, "the event published after the consumer came back is delivered", func() bool {
		counts, _ := byID(rc)
		return counts["after"] == 1
	})
	e.settled("s")
}

// blockPulls fills the consumer's only pull request slot (max_waiting 1)
// with a request of its own; while it is there, the broker drops other
// pull requests that ask for heartbeats without a word (nats-server does
// not answer 409 then, expecting the client to notice the missing
// heartbeats). It returns the func that withdraws the request.
func blockPulls(t *testing.T, e *env, consumer string) func() {
	t.Helper()
	nc := e.b.Conn()
	inbox := nats.NewInbox()
	blocker, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := json.Marshal(map[string]any{"batch": 1, "expires": time.Minute, "idle_heartbeat": time.Second})
	if err := nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT."+e.cfg.Stream+"."+consumer, inbox, req); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the blocking pull request is waiting", func() bool {
		return e.consumer(consumer).NumWaiting == 1
	})
	return func() { _ = blocker.Unsubscribe() }
}

// TestLostPullRequestIsIssuedAgain has the broker drop the dispatcher's
// pull request without telling it, as a consumer leader that dies does:
// the dispatcher notices the missing heartbeats, says so to readiness,
// asks again, and delivers once its request gets through.
func TestLostPullRequestIsIssuedAgain(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, always(200))
	sub := testSub("s", "orders.>", rc.URL)
	ctx := context.Background()
	cfg := consumerConfig(e.b, sub, 0)
	cfg.MaxWaiting = 1
	cons, err := e.b.JetStream().CreateConsumer(ctx, e.cfg.Stream, cfg)
	if err != nil {
		t.Fatal(err)
	}
	unblock := blockPulls(t, e, "s")

	hook, err := NewWebhook(sub)
	if err != nil {
		t.Fatal(err)
	}
	mt, err := newMetrics(prometheus.NewRegistry(), &Manager{})
	if err != nil {
		t.Fatal(err)
	}
	s := &subscription{sub: sub, hook: hook}
	m := &Manager{configured: []*subscription{s}}
	d := newDispatcher(s, cons, sub.MaxInFlight, e.b, hook, e.seen, mt, slog.New(slog.DiscardHandler))
	d.watch.heartbeat, d.watch.stallAfter = 500*time.Millisecond, time.Second
	stop, cancel := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { d.run(stop, time.Second); close(ran) }()
	t.Cleanup(func() {
		cancel()
		<-ran
	})

	poll.Until(t, 20*time.Second, "readiness says the consumer is silent", func() bool {
		err := m.stalled()
		return err != nil && strings.Contains(err.Error(), `subscription "s": no word from its consumer for`)
	})
	unblock()
	e.publish("orders.a", newEvent("e1"))
	poll.Until(t, 20*time.Second, "the event is delivered once a pull request gets through", func() bool {
		return rc.count() == 1
	})
	poll.Until(t, 10*time.Second, "readiness is back", func() bool { return m.stalled() == nil })
	e.settled("s")
}

func TestWatchSaysWhenSilentWithAFreeSlot(t *testing.T) {
	w := newWatch("s", slog.New(slog.DiscardHandler))
	w.stallAfter = 0
	if err := w.err(); err != nil {
		t.Errorf("not waiting: err = %v, want nil", err)
	}
	w.waiting()
	poll.Until(t, time.Second, "silent while waiting", func() bool { return w.err() != nil })
	w.heard(true)
	w.stallAfter = time.Hour
	if err := w.err(); err != nil {
		t.Errorf("just heard: err = %v, want nil", err)
	}
	w.stallAfter = 0
	w.busy()
	if err := w.err(); err != nil {
		t.Errorf("every slot busy: err = %v, want nil", err)
	}
	if wait, long := w.wait(); wait != nextWait || long {
		t.Errorf("wait soon after an event = %v, %v; want %v, short", wait, long, nextWait)
	}
}
