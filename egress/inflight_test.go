package egress

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/poll"
)

func TestRedeliveredCopyIsNotDeliveredBesideTheFirst(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, r *http.Request) int {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return http.StatusOK
	})
	sub := testSub("s", "orders.>", rc.URL)
	r := e.start(sub)
	// A short ack wait, so the broker redelivers the event while the app
	// still holds its first copy.
	cfg := consumerConfig(e.b, sub, 0)
	cfg.AckWait = 500 * time.Millisecond
	if _, err := e.b.JetStream().CreateOrUpdateConsumer(context.Background(), e.cfg.Stream, cfg); err != nil {
		t.Fatal(err)
	}
	e.publish("orders.a", newEvent("slow"))
	poll.Until(t, 20*time.Second, "the broker redelivered the event and the copy was dropped", func() bool {
		return e.consumer("s").NumRedelivered > 0 && value(t, r.m.deliveries.WithLabelValues("s", outcomeDuplicate)) > 0
	})
	close(release)
	e.settled("s")
	if n := rc.count(); n != 1 {
		t.Errorf("the app got the event %d times, want once", n)
	}
	if st := r.Stats(context.Background())[0]; st.Delivered != 1 {
		t.Errorf("stats = %+v, want one delivered", st)
	}
}
