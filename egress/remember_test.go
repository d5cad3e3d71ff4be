package egress

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// natsServer starts a JetStream server on port (-1: any) with its store
// in dir; it is shut down at cleanup, if not before.
func natsServer(t *testing.T, port int, dir string) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// externalEnv is an env whose broker is the nats-server at url.
func externalEnv(t *testing.T, url string) *env {
	t.Helper()
	cfg := config.Default().Broker
	cfg.URL = url
	return envOn(t, cfg)
}

// settledAcrossOutages is settled, taking a failing consumer lookup (the
// broker is not back yet) for not settled.
func (e *env) settledAcrossOutages(name string, within time.Duration) {
	e.t.Helper()
	poll.Until(e.t, within, "consumer "+name+" settles", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := e.b.JetStream().Consumer(ctx, e.cfg.Stream, name)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// TestBrokerDownWhileRecordingDeliversOnce has the app answer 2xx while
// the broker is down, so that the deliveries cannot be remembered: the
// events are kept and remembered once the broker is back, and only then
// acknowledged, so none reaches the app a second time.
func TestBrokerDownWhileRecordingDeliversOnce(t *testing.T) {
	dir := t.TempDir()
	ns := natsServer(t, -1, dir)
	port := ns.Addr().(*net.TCPAddr).Port
	e := externalEnv(t, ns.ClientURL())
	const n = 4
	arrived := make(chan string, n)
	down := make(chan struct{})
	rc := newReceiver(t, func(_ int, r *http.Request) int {
		if id := r.Header.Get("ce-id"); id != "first" {
			arrived <- id
			select {
			case <-down:
			case <-r.Context().Done():
			}
		}
		return 200
	})
	var once sync.Once
	answer := func() { once.Do(func() { close(down) }) }
	t.Cleanup(answer) // before the receiver closes
	sub := testSub("s", "orders.>", rc.URL)
	sub.MaxInFlight = n
	r := e.start(sub)
	e.publish("orders.a", newEvent("first"))
	e.settled("s")
	for i := range n {
		e.publish("orders.a", newEvent(fmt.Sprint(i)))
	}
	for range n {
		select {
		case <-arrived:
		case <-time.After(20 * time.Second):
			t.Fatal("the deliveries did not reach the app")
		}
	}

	ns.Shutdown()
	ns.WaitForShutdown()
	answer()
	natsServer(t, port, dir)
	// Without the record, the events would come again after the ack wait.
	e.settledAcrossOutages("s", 2*ackWait(sub))
	counts, _ := byID(rc)
	for i := range n {
		if id := fmt.Sprint(i); counts[id] != 1 {
			t.Errorf("event %s reached the app %d times, want once", id, counts[id])
		}
	}
	if err := r.stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if err := e.b.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// TestCopyWaitsForThePendingRecord stores a second copy of an event (same
// source and id, another topic) while the first one's delivery cannot be
// remembered (the delivered log takes no more records): the copy waits for
// the record instead of reaching the app.
func TestCopyWaitsForThePendingRecord(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, always(200))
	r := e.start(testSub("s", "orders.>", rc.URL))
	e.publish("orders.a", newEvent("first"))
	e.settled("s")

	ctx := context.Background()
	log, err := e.b.JetStream().Stream(ctx, "eventsidecar-delivered-"+e.cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := log.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	limited := info.Config
	limited.MaxMsgs, limited.Discard = int64(info.State.Msgs), jetstream.DiscardNew
	if _, err := e.b.JetStream().UpdateStream(ctx, limited); err != nil {
		t.Fatalf("limit the delivered set: %v", err)
	}

	ev := newEvent("e1")
	e.publish("orders.a", ev)
	s := r.configured[0]
	poll.Until(t, 10*time.Second, "the delivery is answered, its record pending", func() bool {
		return rc.count() == 2 && s.answered.pending(ev) != nil
	})
	e.publish("orders.b", ev)
	poll.Until(t, 10*time.Second, "the copy is fetched and held", func() bool {
		c := e.consumer("s")
		return c.NumPending == 0 && c.NumAckPending == 2
	})
	limited.MaxMsgs = -1
	if _, err := e.b.JetStream().UpdateStream(ctx, limited); err != nil {
		t.Fatalf("lift the limit: %v", err)
	}
	e.settled("s")
	if counts, _ := byID(rc); counts["e1"] != 1 {
		t.Errorf("the event reached the app %d times, want once", counts["e1"])
	}
	if seen, err := e.seen.Seen(ctx, "s", ev.Source(), ev.ID()); !seen || err != nil {
		t.Errorf("Seen after the record = %v, %v; want true", seen, err)
	}
	if got := value(t, r.m.deliveries.WithLabelValues("s", outcomeDuplicate)); got != 1 {
		t.Errorf("duplicates = %v, want 1", got)
	}
}
