package broker

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/wire"
)

// testConfig is an embedded, in-process broker with its store in a fresh
// temporary directory.
func testConfig(t *testing.T) config.Broker {
	t.Helper()
	return config.Broker{
		Embedded:        config.Embedded{StoreDir: t.TempDir()},
		Stream:          "EVENTS",
		SubjectPrefix:   "events",
		Replicas:        1,
		DuplicateWindow: 2 * time.Minute,
		PublishTimeout:  2 * time.Second,
		MaxPending:      256,
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// open opens a Client and closes it when the test ends.
func open(t *testing.T, cfg config.Broker) *Client {
	t.Helper()
	c, err := Open(t.Context(), cfg, "eventsidecar test", testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// runServer starts a separate JetStream server on 127.0.0.1:port (-1 for
// a random port) storing in dir, and shuts it down when the test ends.
func runServer(t *testing.T, dir string, port int) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		ServerName: "external",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("external server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// testEvent is a valid event with every kind of attribute set.
func testEvent(t *testing.T, id string) *event.Event {
	t.Helper()
	ev := event.New()
	ev.SetID(id)
	ev.SetSource("/eventsidecar/test")
	ev.SetType("com.example.order.created")
	ev.SetSubject("order-" + id)
	ev.SetDataSchema("https://example.com/schema.json")
	ev.SetTime(time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC))
	ev.SetExtension("partitionkey", "customer-7")
	ev.SetExtension("priority", 3)
	if err := ev.SetData("application/json", []byte(`{"order":"`+id+`","total":12.5}`)); err != nil {
		t.Fatal(err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatalf("test event invalid: %v", err)
	}
	return &ev
}

// messages are n distinct events on topic "orders.created".
func messages(t *testing.T, n int) []Message {
	t.Helper()
	msgs := make([]Message, n)
	for i := range msgs {
		id := fmt.Sprintf("evt-%d", i)
		msgs[i] = Message{Topic: "orders.created", Event: testEvent(t, id), MsgID: "/eventsidecar/test " + id, Fingerprint: "fp-" + id}
	}
	return msgs
}

// attributes lists an event's attributes as name=value in canonical
// string form.
func attributes(ev *event.Event) []string {
	var out []string
	wire.EachAttribute(ev, func(name, value string) { out = append(out, name+"="+value) })
	return out
}

// waitFor polls cond until it returns nil or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		<-tick.C
	}
}

// streamMsgs is the number of messages in c's stream.
func streamMsgs(t *testing.T, c *Client) uint64 {
	t.Helper()
	info, err := c.setup.lastStream().Info(context.Background())
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}
