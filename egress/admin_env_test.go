package egress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/apitest"
	"github.com/eventsidecar/eventsidecar/wire"
)

// testSubs serves fixed stats and the real dead-letter store of its
// subscriptions.
type testSubs struct {
	b    *broker.Client
	subs []config.Subscription
}

var _ Subscriptions = (*testSubs)(nil)

func (s *testSubs) Stats(context.Context) []Stats {
	out := make([]Stats, len(s.subs))
	for i, sub := range s.subs {
		out[i] = Stats{Name: sub.Name, Topic: sub.Topic, Endpoint: sub.Endpoint, Pending: uint64(i + 1), Delivered: 7}
	}
	return out
}

func (s *testSubs) DeadLetters(name string) (*DeadLetters, error) {
	for _, sub := range s.subs {
		if sub.Name == name {
			return NewDeadLetters(s.b, sub), nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownSubscription, name)
}

// adminHarness is the admin API over a real embedded JetStream server,
// served under /v1 by an httptest server.
type adminHarness struct {
	*env
	srv *httptest.Server
}

// newAdminHarness serves the admin API over the subscriptions "orders"
// and "audit" (dead-letter topic "dead.audit").
func newAdminHarness(t *testing.T) *adminHarness {
	t.Helper()
	e := newEnv(t)
	orders, audit := config.DefaultSubscription(), config.DefaultSubscription()
	orders.Name, orders.Topic, orders.Endpoint = "orders", "orders.>", "http://127.0.0.1:8080/events"
	audit.Name, audit.Topic, audit.Endpoint, audit.DeadLetterTopic = "audit", ">", "http://127.0.0.1:8081/", "dead.audit"
	return serveAdmin(e, &testSubs{b: e.b, subs: []config.Subscription{orders, audit}})
}

// newPlainAdminHarness serves the admin API over a real Manager with no
// subscriptions.
func newPlainAdminHarness(t *testing.T) *adminHarness {
	t.Helper()
	e := newEnv(t)
	m, err := NewManager(nil, e.b, e.seen, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("new manager: %v", err)
	}
	return serveAdmin(e, m)
}

func serveAdmin(e *env, subs Subscriptions) *adminHarness {
	r := chi.NewRouter()
	r.Route("/v1", NewAdmin(subs, config.Default().HTTP.ReadTimeout, slog.New(slog.DiscardHandler)).Routes)
	srv := httptest.NewServer(r)
	e.t.Cleanup(srv.Close)
	return &adminHarness{env: e, srv: srv}
}

// post sends body to path with the given headers ("Name: value" pairs).
func (h *adminHarness) post(path, body string, hdrs ...string) *http.Response {
	h.t.Helper()
	return h.do(http.MethodPost, path, body, hdrs...)
}

// do sends a request with the given headers ("Name: value" pairs).
func (h *adminHarness) do(method, path, body string, hdrs ...string) *http.Response {
	h.t.Helper()
	return apitest.Do(h.t, h.srv.Client(), method, h.srv.URL+path, body, hdrs...)
}

func (h *adminHarness) get(path string) *http.Response {
	h.t.Helper()
	return h.do(http.MethodGet, path, "")
}

// problemBody is an RFC 9457 answer.
type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// deadEvent is a dead letter of sub: event id with data of content type
// ct, every dlq* extension and an extension of its own.
func deadEvent(t *testing.T, sub, id, ct string, data []byte) *event.Event {
	t.Helper()
	ev := event.New()
	ev.SetID(id)
	ev.SetSource("/test/orders")
	ev.SetType("com.example.order.created")
	ev.SetTime(time.Date(2024, 5, 6, 7, 0, 0, 0, time.UTC))
	ev.SetExtension("partitionkey", "customer-"+id)
	if err := ev.SetData(ct, data); err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string]string{
		"dlqreason": "HTTP 400", "dlqstatus": "400", "dlqbody": "bad order " + id, "dlqattempts": "3",
		"dlqsubscription": sub, "dlqtime": "2024-05-06T07:08:09Z",
	} {
		ev.SetExtension(name, value)
	}
	return &ev
}

// store publishes events on topic through the broker.
func (h *adminHarness) store(topic string, evs ...*event.Event) {
	h.t.Helper()
	msgs := make([]broker.Message, len(evs))
	for i, ev := range evs {
		msgs[i] = broker.Message{Topic: topic, Event: ev}
	}
	for i, r := range h.b.Publish(context.Background(), msgs) {
		if r.Err != nil {
			h.t.Fatalf("publish %q to %q: %v", evs[i].ID(), topic, r.Err)
		}
	}
}

// storeDead stores dead letters a (JSON), b (text) and c (binary) of
// "orders", and one of "audit" between them.
func (h *adminHarness) storeDead() map[string]*event.Event {
	h.t.Helper()
	evs := map[string]*event.Event{
		"a": deadEvent(h.t, "orders", "a", "application/json", []byte(`{"order":"a","n":[1,2]}`)),
		"b": deadEvent(h.t, "orders", "b", "text/plain; charset=utf-8", []byte("Euro € <b>")),
		"c": deadEvent(h.t, "orders", "c", "application/octet-stream", []byte{0, 0xff, 'c'}),
	}
	h.store("deadletter.orders", evs["a"], evs["b"])
	h.store("dead.audit", deadEvent(h.t, "audit", "x", "application/json", []byte(`1`)))
	h.store("deadletter.orders", evs["c"])
	return evs
}

type deadLetterList struct {
	DeadLetters []deadLetter `json:"deadletters"`
}

func (h *adminHarness) deadIDs(name string) []string {
	h.t.Helper()
	resp := h.get("/v1/subscriptions/" + name + "/deadletters")
	apitest.WantStatus(h.t, resp, http.StatusOK)
	var ids []string
	for _, d := range apitest.DecodeJSON[deadLetterList](h.t, resp).DeadLetters {
		var ev event.Event
		if err := json.Unmarshal(d.Event, &ev); err != nil {
			h.t.Fatalf("dead letter %d: event %s: %v", d.Sequence, d.Event, err)
		}
		ids = append(ids, ev.ID())
	}
	return ids
}

// replayed is the ids of the events stored on the replay topic of name.
func (h *adminHarness) replayed(name string) []string {
	h.t.Helper()
	ctx := context.Background()
	st, err := h.b.JetStream().Stream(ctx, h.b.Stream())
	if err != nil {
		h.t.Fatalf("stream: %v", err)
	}
	subject := h.b.Subject(ReplayTopic(name))
	if want := "events._replay." + name; subject != want {
		h.t.Fatalf("replay subject = %q, want %q", subject, want)
	}
	var ids []string
	for seq := uint64(1); ; seq++ {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return ids
		}
		if err != nil {
			h.t.Fatalf("GetMsg(%d): %v", seq, err)
		}
		ev, err := wire.DecodeNATS(m.Header, m.Data)
		if err != nil {
			h.t.Fatalf("decode replayed %d: %v", m.Sequence, err)
		}
		if _, ok := ev.Extensions()["dlqreason"]; ok {
			h.t.Errorf("replayed event %q still has dlqreason", ev.ID())
		}
		ids = append(ids, ev.ID())
		seq = m.Sequence
	}
}
