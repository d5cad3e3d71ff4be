package egress

import (
	"net/http"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dapr"
)

// TestDaprOutcome is the table from a Dapr app's answer to the Outcome
// (contract §9), with what the circuit reads of it.
func TestDaprOutcome(t *testing.T) {
	r := config.DefaultSubscription().Retry
	tests := []struct {
		name   string
		status int
		body   string
		header http.Header
		kind   Kind
		cause  Cause
		reason string
	}{
		{"SUCCESS", 200, `{"status":"SUCCESS"}`, nil, Delivered, CauseAnswer, "HTTP 200"},
		{"no body", 204, "", nil, Delivered, CauseAnswer, "HTTP 204"},
		{"RETRY", 200, `{"status":"RETRY"}`, nil, Retry, CauseAnswer, reasonRetry},
		{"unknown status", 200, `{"status":"LATER"}`, nil, Retry, CauseAnswer, reasonRetry},
		{"DROP", 200, `{"status":"DROP"}`, nil, Dead, CauseAnswer, reasonDrop},
		{"404", 404, "", nil, Dead, CauseAnswer, "HTTP 404"},
		{"400", 400, "", nil, Retry, CauseAnswer, "HTTP 400"},
		{"415", 415, "", nil, Retry, CauseAnswer, "HTTP 415"},
		{"410", 410, "", nil, Retry, CauseAnswer, "HTTP 410"},
		{"408", 408, "", nil, Retry, CauseFailure, "HTTP 408"},
		{"429", 429, "", http.Header{"Retry-After": {"1"}}, Retry, CauseUnavailable, "HTTP 429"},
		{"503", 503, "", nil, Retry, CauseUnavailable, "HTTP 503"},
		{"500", 500, "", nil, Retry, CauseFailure, "HTTP 500"},
		{"303 (Go SDK, undecodable)", 303, "", nil, Retry, CauseFailure, "HTTP 303 (redirects are not followed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := daprOutcome(dapr.HTTPAnswer(tt.status, []byte(tt.body)), tt.status, tt.header, 1, r)
			if o.Kind != tt.kind || o.Cause != tt.cause || o.Reason != tt.reason || o.Status != tt.status {
				t.Errorf("daprOutcome = %+v, want %v, cause %d, %q", o, tt.kind, tt.cause, tt.reason)
			}
			if tt.header != nil && o.Delay.Seconds() != 1 {
				t.Errorf("delay %s, want the Retry-After of 1s", o.Delay)
			}
		})
	}
}

func TestDaprDeliverySigned(t *testing.T) {
	e := newEnv(t)
	a := &daprApp{subscribe: ordersSubscribe, answer: answering(200, "")}
	r, _ := e.startDapr(a, func(c *config.Config) { c.Dapr.Subscription.SigningSecret = testSecret })
	name := daprName("orders")
	e.delivering(r, name)
	e.publish("orders", newEvent("e-1"))
	e.settled(name)
	reqs := a.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d deliveries, want 1", len(reqs))
	}
	verifier, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifier.Verify(reqs[0].body, reqs[0].header); err != nil {
		t.Errorf("Verify: %v", err)
	}
}
