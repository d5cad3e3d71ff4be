package egress

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// TestDeliveredOnceWhileACopyWaits stores an event on two topics of one
// subscription while the app holds the first copy, so that the second is
// fetched, and its delivered-set lookup made, before the first is
// recorded: the app must still get it once.
func TestDeliveredOnceWhileACopyWaits(t *testing.T) {
	e := newEnv(t)
	held := make(chan struct{})
	rc := newReceiver(t, func(n int, _ *http.Request) int {
		if n == 1 {
			<-held
		}
		return http.StatusOK
	})
	release := sync.OnceFunc(func() { close(held) })
	t.Cleanup(release)
	sub := testSub("s", "orders.>", rc.URL)
	sub.MaxInFlight = 1
	e.start(sub)
	ev := newEvent("same")
	e.publish("orders.a", ev)
	poll.Until(t, 20*time.Second, "the app holds the first copy", func() bool { return rc.count() == 1 })
	e.publish("orders.b", ev)
	poll.Until(t, 20*time.Second, "the sidecar holds the second copy", func() bool { return e.consumer("s").NumAckPending == 2 })
	release()
	e.settled("s")
	if n := rc.count(); n != 1 {
		t.Errorf("the app got the event %d times, want 1", n)
	}
}
