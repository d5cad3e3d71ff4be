package egress

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// appAt is an app, recording what a receiver records, on addr, which
// must be free again.
func appAt(t *testing.T, addr string, answer func(n int, r *http.Request) int) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s again: %v", addr, err)
	}
	rc := newReceiver(t, answer)
	srv := httptest.NewUnstartedServer(rc.Config.Handler)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return rc
}

// freeAddr is an address nothing listens on: a connection is refused.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// byID counts a receiver's requests per event id, and collects the
// attempt headers of each.
func byID(rc *receiver) (map[string]int, map[string][]string) {
	counts, attempts := map[string]int{}, map[string][]string{}
	for _, r := range rc.requests() {
		id := r.header.Get("ce-id")
		counts[id]++
		attempts[id] = append(attempts[id], r.header.Get("eventsidecar-attempt"))
	}
	return counts, attempts
}

// value is the value of a counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}

func TestAppDownThenUpLosesNothing(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("ordered_by_key %v", ordered), func(t *testing.T) {
			e := newEnv(t)
			addr := freeAddr(t)
			sub := testSub("s", "orders.>", "http://"+addr+"/events")
			sub.Retry.MaxAttempts, sub.OrderedByKey, sub.MaxInFlight = 2, ordered, 4
			r := e.start(sub)
			const n = 6
			for i := range n {
				e.publish("orders.a", newEvent(fmt.Sprint(i), "partitionkey", fmt.Sprint(i%2)))
			}
			poll.Until(t, 20*time.Second, "many failing probes while the app is down", func() bool {
				return value(t, r.m.deliveries.WithLabelValues("s", outcomePaused)) >= 10
			})
			st := r.Stats(context.Background())[0]
			if st.State != StatePaused || st.StateReason != "app unreachable: connection refused" {
				t.Errorf("while down: state %q (%q), want paused, app unreachable: connection refused", st.State, st.StateReason)
			}
			if g := value(t, r.m.circuitOpen.WithLabelValues("s")); g != 1 {
				t.Errorf("circuit_open while down = %v, want 1", g)
			}

			app := appAt(t, addr, always(200))
			e.settled("s")
			counts, attempts := byID(app)
			for i := range n {
				id := fmt.Sprint(i)
				if counts[id] != 1 || attempts[id][0] != "1" {
					t.Errorf("event %s: %d deliveries, attempts %v; want one, attempt 1 (attempts while down do not count)", id, counts[id], attempts[id])
				}
			}
			st = r.Stats(context.Background())[0]
			if st.State != StateDelivering || st.StateReason != "" || st.DeadLettered != 0 || st.Delivered != n {
				t.Errorf("after the outage: %+v, want delivering, %d delivered, none dead-lettered", st, n)
			}
			if g := value(t, r.m.circuitOpen.WithLabelValues("s")); g != 0 {
				t.Errorf("circuit_open after the outage = %v, want 0", g)
			}
			if c := value(t, r.m.transitions.WithLabelValues("s", StateDelivering)); c != 1 {
				t.Errorf("transitions to delivering = %v, want 1", c)
			}
		})
	}
}

// switchable answers status, recording the answers given.
type switchable struct {
	status  atomic.Int32
	mu      sync.Mutex
	answers map[int]int
}

func newSwitchable(status int) *switchable {
	s := &switchable{answers: map[int]int{}}
	s.status.Store(int32(status))
	return s
}

func (s *switchable) answer(int, *http.Request) int {
	status := int(s.status.Load())
	s.mu.Lock()
	s.answers[status]++
	s.mu.Unlock()
	return status
}

func (s *switchable) given(status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answers[status]
}

func TestAppAnswering503ThenUpLosesNothing(t *testing.T) {
	e := newEnv(t)
	app := newSwitchable(200)
	rc := newReceiver(t, app.answer)
	sub := testSub("s", "orders.>", rc.URL)
	sub.Retry.MaxAttempts = 2
	r := e.start(sub)
	e.publish("orders.a", newEvent("first"))
	e.settled("s")

	app.status.Store(503)
	const n = 5
	for i := range n {
		e.publish("orders.a", newEvent(fmt.Sprint(i)))
	}
	poll.Until(t, 20*time.Second, "many 503s", func() bool { return app.given(503) >= 12 })
	if st := r.Stats(context.Background())[0]; st.State != StatePaused || st.StateReason != "every event answered HTTP 503" {
		t.Errorf("while answering 503: state %q (%q), want paused, every event answered HTTP 503", st.State, st.StateReason)
	}
	app.status.Store(200)
	e.settled("s")
	delivered := map[string]int{}
	for _, req := range rc.requests() {
		delivered[req.header.Get("ce-id")]++
	}
	st := r.Stats(context.Background())[0]
	if st.DeadLettered != 0 || st.Delivered != 1+n || st.State != StateDelivering {
		t.Errorf("after the 503s: %+v, want delivering, %d delivered, none dead-lettered", st, 1+n)
	}
	if dls, err := mustDeadLetters(t, r, "s").List(context.Background(), 10); err != nil || len(dls) != 0 {
		t.Errorf("dead letters = %d (%v), want none", len(dls), err)
	}
}

func mustDeadLetters(t *testing.T, r *running, name string) *DeadLetters {
	t.Helper()
	store, err := r.DeadLetters(name)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

func TestPoisonEventStillDeadLetters(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		wantAttempts int
	}{
		{"400 forever", 400, 1},
		{"500 for one event while the others succeed", 500, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			rc := newReceiver(t, func(_ int, r *http.Request) int {
				if r.Header.Get("ce-id") == "poison" {
					return tt.status
				}
				return 200
			})
			sub := testSub("s", "orders.>", rc.URL)
			sub.Retry.MaxAttempts = 3
			r := e.start(sub)
			e.publish("orders.a", newEvent("first"))
			e.settled("s")
			e.publish("orders.a", newEvent("poison"))
			for i := range 10 {
				e.publish("orders.a", newEvent(fmt.Sprint(i)))
			}
			dl := e.deadLetters(r, "s", 1)[0]
			e.settled("s")
			if got := fmt.Sprint(dl.Event.Extensions()["dlqattempts"]); dl.Event.ID() != "poison" || got != fmt.Sprint(tt.wantAttempts) {
				t.Errorf("dead letter %s with dlqattempts %s, want poison with %d", dl.Event.ID(), got, tt.wantAttempts)
			}
			if counts, _ := byID(rc); counts["poison"] != tt.wantAttempts {
				t.Errorf("the poison event was attempted %d times, want %d", counts["poison"], tt.wantAttempts)
			}
			if c := value(t, r.m.transitions.WithLabelValues("s", StatePaused)); c != 0 {
				t.Errorf("the circuit opened %v times for a poison event, want never", c)
			}
		})
	}
}

func TestHoldsDeliveryUntilTheAppFirstAnswers(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, r *http.Request) int {
		if n == 1 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		return 200
	})
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	t.Cleanup(releaseAll) // before the receiver closes
	sub := testSub("s", "orders.>", rc.URL)
	sub.MaxInFlight = 4
	r := e.start(sub)
	const n = 5
	for i := range n {
		e.publish("orders.a", newEvent(fmt.Sprint(i)))
	}
	poll.Until(t, 10*time.Second, "the first event attempted, the others held", func() bool {
		st, c := r.Stats(context.Background())[0], e.consumer("s")
		return rc.count() == 1 && c.NumPending+uint64(c.NumAckPending) == n && c.NumAckPending >= sub.MaxInFlight &&
			st.InFlight == 1 && st.State == StatePaused && st.StateReason == reasonFirstAnswer
	})
	releaseAll()
	e.settled("s")
	if rc.count() != n {
		t.Errorf("%d deliveries, want %d", rc.count(), n)
	}
	if st := r.Stats(context.Background())[0]; st.State != StateDelivering || st.Delivered != n {
		t.Errorf("stats = %+v, want delivering, %d delivered", st, n)
	}
}

func TestStateOfAStreamOnlySubscription(t *testing.T) {
	e := newEnv(t)
	m := e.start(testSub("s", "orders.>", ""))
	if st := m.Stats(context.Background())[0]; st.State != StatePaused || !strings.Contains(st.StateReason, "no stream") {
		t.Errorf("without a stream: state %q (%q), want paused, no stream open", st.State, st.StateReason)
	}
	st, err := m.OpenSession(context.Background(), SessionSpec{Name: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if s := m.Stats(context.Background())[0]; s.State != StateDelivering || s.StateReason != "" {
		t.Errorf("with a stream: state %q (%q), want delivering", s.State, s.StateReason)
	}
}

func TestStatsStateJSON(t *testing.T) {
	for _, tt := range []struct {
		st   Stats
		want string
	}{
		{Stats{State: StatePaused, StateReason: "app unreachable: connection refused"}, `"state":"paused","state_reason":"app unreachable: connection refused"}`},
		{Stats{State: StateDelivering}, `"state":"delivering"}`},
	} {
		b, err := json.Marshal(tt.st)
		if err != nil || !strings.HasSuffix(string(b), tt.want) {
			t.Errorf("JSON of %+v = %s (%v), want it to end with %s", tt.st, b, err, tt.want)
		}
	}
}
