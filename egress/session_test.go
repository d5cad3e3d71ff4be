package egress

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestStreamAnswerOutcomes(t *testing.T) {
	sub := testSub("s", "a", "")
	sub.Retry.MaxAttempts, sub.Retry.MaxBackoff = 3, time.Second
	st := &Session{s: &subscription{sub: sub}}
	tests := []struct {
		name    string
		attempt int
		a       Answer
		kind    Kind
		delay   func(time.Duration) bool
		reason  string
	}{
		{"ack", 1, Answer{Kind: Delivered}, Delivered, nil, "acknowledged"},
		{"retry with delay", 1, Answer{Kind: Retry, Delay: 300 * time.Millisecond}, Retry,
			func(d time.Duration) bool { return d == 300*time.Millisecond }, "retry requested"},
		{"retry delay capped at max_backoff", 1, Answer{Kind: Retry, Delay: time.Hour}, Retry,
			func(d time.Duration) bool { return d == time.Second }, "retry requested"},
		{"retry with backoff", 2, Answer{Kind: Retry}, Retry,
			func(d time.Duration) bool { return d >= 0 && d <= 2*sub.Retry.InitialBackoff }, "retry requested"},
		{"retry at the last attempt: the dispatcher gives up", 3, Answer{Kind: Retry}, Retry,
			func(d time.Duration) bool { return d >= 0 && d <= 4*sub.Retry.InitialBackoff }, "retry requested"},
		{"reject", 1, Answer{Kind: Dead, Reason: "bad order"}, Dead, nil, "rejected: bad order"},
		{"reject without reason", 1, Answer{Kind: Dead}, Dead, nil, "rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := st.outcome(tt.attempt, tt.a)
			if o.Kind != tt.kind || o.Cause != CauseAnswer || o.Reason != tt.reason || o.Status != 0 || (tt.delay != nil && !tt.delay(o.Delay)) {
				t.Errorf("outcome = %+v, want %s %q", o, tt.kind, tt.reason)
			}
		})
	}
}

func TestStreamAnswerIDs(t *testing.T) {
	e := newEnv(t)
	m := e.start(testSub("s", "orders.>", ""))
	st, err := m.OpenSession(context.Background(), SessionSpec{Name: "s", MaxInFlight: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- st.Run(ctx) }()
	e.publish("orders.created", newEvent("e1"))
	next, cancelNext := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelNext()
	out, err := st.Next(next)
	if err != nil {
		t.Fatal(err)
	}
	if out.Event.ID() != "e1" || out.Attempt != 1 || !strings.HasPrefix(out.TraceParent, "00-") {
		t.Errorf("delivery = %+v", out)
	}
	for _, id := range []string{"0", "2", "x", ""} {
		if err := st.Answer(id, Answer{Kind: Delivered}); !errors.Is(err, ErrUnknownDelivery) {
			t.Errorf("Answer(%q) = %v, want ErrUnknownDelivery", id, err)
		}
	}
	if err := st.Answer(out.ID, Answer{Kind: Delivered}); err != nil {
		t.Fatal(err)
	}
	e.settled("s")
	// A late second answer is ignored.
	if err := st.Answer(out.ID, Answer{Kind: Dead}); err != nil {
		t.Errorf("second answer = %v, want it ignored", err)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Errorf("Run = %v", err)
	}
	if _, err := st.Next(next); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("Next after Run = %v, want ErrSessionClosed", err)
	}
	if s := m.Stats(context.Background())[0]; s.Delivered != 1 || s.DeadLettered != 0 {
		t.Errorf("stats = %+v, want 1 delivered", s)
	}
}
