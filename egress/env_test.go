package egress

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dedup"
	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// env is a real embedded JetStream server with the delivered-set, for
// running Managers against httptest receivers.
type env struct {
	t    *testing.T
	cfg  config.Broker
	b    *broker.Client
	seen *dedup.Delivered

	mu     sync.Mutex
	stored []storedEvent // what publish stored, in order
}

// storedEvent is where publish stored an event.
type storedEvent struct {
	subject string
	seq     uint64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cfg := config.Default().Broker
	cfg.Embedded.StoreDir = t.TempDir()
	return envOn(t, cfg)
}

// envOn is an env on the broker cfg describes.
func envOn(t *testing.T, cfg config.Broker) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, cfg, "egress-test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	seen, err := dedup.OpenDelivered(ctx, b.JetStream(), cfg.Stream, cfg.DuplicateWindow, 1)
	if err != nil {
		t.Fatalf("open delivered-set: %v", err)
	}
	return &env{t: t, cfg: cfg, b: b, seen: seen}
}

// running is a Manager delivering until stop is called (or cancel, which
// starts the stop without waiting for it).
type running struct {
	*Manager
	stop   func() error
	cancel context.CancelFunc
}

// start runs a Manager for subs; it is stopped (gracefully) at cleanup
// unless the test stops it first.
func (e *env) start(subs ...config.Subscription) *running {
	e.t.Helper()
	m, err := NewManager(subs, e.b, e.seen, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		e.t.Fatalf("new manager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	e.t.Cleanup(func() { _ = stop() })
	return &running{Manager: m, stop: stop, cancel: cancel}
}

func (e *env) publish(topic string, evs ...*event.Event) {
	e.t.Helper()
	msgs := make([]broker.Message, len(evs))
	for i, ev := range evs {
		msgs[i] = broker.Message{Topic: topic, Event: ev, MsgID: dedup.MsgID(topic, "", ev), Fingerprint: dedup.Fingerprint(ev)}
	}
	for i, r := range e.b.Publish(context.Background(), msgs) {
		if r.Err != nil {
			e.t.Fatalf("publish %d: %v", i, r.Err)
		}
		e.mu.Lock()
		e.stored = append(e.stored, storedEvent{subject: e.b.Subject(topic), seq: r.Sequence})
		e.mu.Unlock()
	}
}

// lastStored is the stream sequence of the last event publish stored on a
// subject matching one of filters; 0 when there is none.
func (e *env) lastStored(filters []string) uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var last uint64
	for _, ev := range e.stored {
		for _, f := range filters {
			if config.MatchPattern(f, ev.subject) {
				last = max(last, ev.seq)
			}
		}
	}
	return last
}

// settled waits until the subscription's consumer holds nothing pending or
// unacknowledged and has handed out every event publish stored for it: the
// broker counts a new event as pending only a moment after storing it, so
// "nothing pending" alone can come before the event is seen.
func (e *env) settled(name string) {
	e.t.Helper()
	poll.Until(e.t, 20*time.Second, "consumer "+name+" settles", func() bool {
		info := e.consumer(name)
		return info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream >= e.lastStored(info.Config.FilterSubjects)
	})
}

func (e *env) consumer(name string) *jetstream.ConsumerInfo {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := e.b.JetStream().Consumer(ctx, e.cfg.Stream, name)
	if err != nil {
		e.t.Fatalf("consumer %s: %v", name, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		e.t.Fatalf("consumer %s info: %v", name, err)
	}
	return info
}

func testSub(name, topic, endpoint string) config.Subscription {
	s := config.DefaultSubscription()
	s.Name, s.Topic, s.Endpoint = name, topic, endpoint
	s.Timeout = 5 * time.Second
	s.Retry.InitialBackoff = 5 * time.Millisecond
	s.Retry.MaxBackoff = 20 * time.Millisecond
	return s
}

func newEvent(id string, exts ...string) *event.Event {
	ev := event.New()
	ev.SetID(id)
	ev.SetSource("/test")
	ev.SetType("com.example.test")
	ev.SetTime(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC))
	for i := 0; i+1 < len(exts); i += 2 {
		ev.SetExtension(exts[i], exts[i+1])
	}
	_ = ev.SetData("application/json", []byte(`{"id":"`+id+`"}`))
	return &ev
}

// request is what a receiver saw.
type request struct {
	header http.Header
	body   []byte
}

// receiver is an httptest app whose answers come from answer; it records
// every request.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newReceiver(t *testing.T, answer func(n int, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, request{header: r.Header.Clone(), body: body})
		n := len(rc.reqs)
		rc.mu.Unlock()
		w.WriteHeader(answer(n, r))
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

func (rc *receiver) count() int { return len(rc.requests()) }

func always(status int) func(int, *http.Request) int {
	return func(int, *http.Request) int { return status }
}
