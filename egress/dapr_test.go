package egress

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// ordersSubscribe subscribes to the topic orders at /orders.
const ordersSubscribe = `[{"pubsubname":"pubsub","topic":"orders","route":"/orders"}]`

func TestDaprDeliveryEnvelopeAndHeaders(t *testing.T) {
	e := newEnv(t)
	a := &daprApp{subscribe: ordersSubscribe, answer: answering(200, `{"status":"SUCCESS"}`)}
	r, _ := e.startDapr(a)
	name := daprName("orders")
	e.delivering(r, name)
	e.publish("orders", newEvent("e-1", "partitionkey", "k1"))
	e.settled(name)
	reqs := a.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d deliveries, want 1", len(reqs))
	}
	got := reqs[0]
	for h, want := range map[string]string{"Content-Type": "application/cloudevents+json", "pubsubname": "pubsub",
		"topic": "orders", "eventsidecar-attempt": "1"} {
		if v := got.header.Get(h); v != want {
			t.Errorf("header %s = %q, want %q", h, v, want)
		}
	}
	if got.path != "/orders" {
		t.Errorf("path %q, want /orders", got.path)
	}
	env := got.envelope
	for member, want := range map[string]any{"id": "e-1", "source": "/test", "type": "com.example.test", "specversion": "1.0",
		"datacontenttype": "application/json", "topic": "orders", "pubsubname": "pubsub", "partitionkey": "k1",
		"time": "2024-05-06T07:08:09Z"} {
		if env[member] != want {
			t.Errorf("envelope %s = %v, want %v (%s)", member, env[member], want, got.body)
		}
	}
	if data, _ := json.Marshal(env["data"]); string(data) != `{"id":"e-1"}` {
		t.Errorf("envelope data %s, want the event's JSON", data)
	}
	parent, _ := env["traceparent"].(string)
	if parent == "" || env["traceid"] != parent || len(parent) != 55 {
		t.Errorf("envelope traceparent %q, traceid %v: want one W3C traceparent in both", parent, env["traceid"])
	}
	if h := got.header.Get("traceparent"); len(h) != 55 || h[3:35] != parent[3:35] {
		t.Errorf("header traceparent %q is not in the envelope's trace %q", h, parent)
	}
	st := stats(t, r, name)
	if st.Delivered != 1 || st.State != StateDelivering || st.Topic != "orders" || !strings.HasPrefix(st.Endpoint, "http://127.0.0.1:") {
		t.Errorf("stats %+v", st)
	}
	if listed := r.DaprSubscriptions(); len(listed) != 1 || listed[0].Topic != "orders" {
		t.Errorf("DaprSubscriptions = %+v, want orders", listed)
	}
}

// TestDaprAnswers is Dapr's answer contract as the sidecar applies it
// (contract §9): DROP and 404 dead-letter at once, every other non-2xx
// and RETRY retry, 2xx with SUCCESS or no status delivers.
func TestDaprAnswers(t *testing.T) {
	tests := []struct {
		name         string
		answer       daprAnswer
		wantAttempts int
		wantReason   string // of the dead letter; "" for none
		wantStatus   int
	}{
		{"SUCCESS", answering(200, `{"status":"SUCCESS"}`), 1, "", 0},
		{"empty 204", answering(204, ""), 1, "", 0},
		{"RETRY once then SUCCESS", firstThen(200, `{"status":"RETRY"}`, 200, `{"status":"SUCCESS"}`), 2, "", 0},
		{"500 then 200", firstThen(500, "boom", 200, ""), 2, "", 0},
		{"400 then 200 (retried, as Dapr)", firstThen(400, "bad", 200, ""), 2, "", 0},
		{"DROP", answering(200, `{"status":"DROP"}`), 1, "app answered DROP", 200},
		{"404", answering(404, "no such route"), 1, "HTTP 404", 404},
		{"RETRY for ever", answering(200, `{"status":"RETRY"}`), 3, "gave up after 3 attempts: app asked for a retry", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			a := &daprApp{subscribe: ordersSubscribe, answer: tt.answer}
			r, _ := e.startDapr(a, func(c *config.Config) { c.Dapr.Subscription.Retry.MaxAttempts = 3 })
			name := daprName("orders")
			e.delivering(r, name)
			e.publish("orders", newEvent("e-1"))
			e.settled(name)
			if n := len(a.requests()); n != tt.wantAttempts {
				t.Errorf("%d attempts, want %d", n, tt.wantAttempts)
			}
			if tt.wantReason == "" {
				if dls, err := mustDeadLetters(t, r, name).List(context.Background(), 10); err != nil || len(dls) != 0 {
					t.Errorf("dead letters %d (%v), want none", len(dls), err)
				}
				return
			}
			e.deadLetters(r, name, 1)
			h := serveAdmin(e, r.Manager)
			var listed struct {
				DeadLetters []deadLetter `json:"deadletters"`
			}
			resp := h.get("/v1/subscriptions/" + name + "/deadletters")
			if err := json.NewDecoder(resp.Body).Decode(&listed); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET deadletters: %d %v", resp.StatusCode, err)
			}
			_ = resp.Body.Close()
			if len(listed.DeadLetters) != 1 {
				t.Fatalf("%d dead letters listed, want 1", len(listed.DeadLetters))
			}
			dl := listed.DeadLetters[0]
			if dl.Reason != tt.wantReason || dl.Status != tt.wantStatus || dl.Subscription != name || dl.Attempts != tt.wantAttempts {
				t.Errorf("dead letter %+v, want reason %q, status %d, %d attempts", dl, tt.wantReason, tt.wantStatus, tt.wantAttempts)
			}
		})
	}
}

// firstThen answers the first delivery of each event one way, the others
// another.
func firstThen(status int, body string, thenStatus int, thenBody string) daprAnswer {
	return func(_ string, n int) (int, string) {
		if n == 1 {
			return status, body
		}
		return thenStatus, thenBody
	}
}

func TestDaprDeadLetterTopic(t *testing.T) {
	e := newEnv(t)
	a := &daprApp{subscribe: `[{"pubsubname":"pubsub","topic":"orders","route":"/orders","deadLetterTopic":"orders-dead"}]`,
		answer: answering(200, `{"status":"DROP"}`)}
	r, _ := e.startDapr(a)
	name := daprName("orders")
	e.delivering(r, name)
	e.publish("orders", newEvent("e-1"))
	e.settled(name)
	e.deadLetters(r, name, 1)
	stored := 0
	poll.Until(t, 10*time.Second, "the dead letter on orders-dead", func() bool {
		info, err := e.b.JetStream().Stream(context.Background(), e.cfg.Stream)
		if err != nil {
			return false
		}
		msg, err := info.GetLastMsgForSubject(context.Background(), e.b.Subject("orders-dead"))
		if err != nil {
			return false
		}
		stored = int(msg.Sequence)
		return true
	})
	if stored == 0 {
		t.Error("nothing stored on orders-dead")
	}
}
