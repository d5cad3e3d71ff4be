package egress

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/config"
)

// step is one attempt's outcome fed to a circuit, and what it must say.
type step struct {
	seq        uint64
	o          Outcome
	probe      bool
	wantCounts bool
	wantPaused bool
}

var (
	ok200       = Outcome{Kind: Delivered, Status: 200}
	rejected404 = Outcome{Kind: Dead, Status: 404}
	failed500   = Outcome{Kind: Retry, Cause: CauseFailure, Status: 500, Reason: "HTTP 500"}
	timedOut    = Outcome{Kind: Retry, Cause: CauseFailure, Reason: "timeout after 1s"}
	busy503     = Outcome{Kind: Retry, Cause: CauseUnavailable, Status: 503, Reason: "HTTP 503"}
	refused     = Outcome{Kind: Retry, Cause: CauseUnreachable, Reason: "connection refused"}
	cancelled   = Outcome{Kind: Retry, Cause: CauseCancelled, Reason: reasonCancelled}
)

// started is a circuit's first steps, ending the hold at start.
var started = []step{{1, ok200, true, true, false}}

func TestCircuitRules(t *testing.T) {
	tests := []struct {
		name       string
		steps      []step
		wantReason string
	}{
		{"held until the app answers", []step{
			{1, refused, true, false, true},
			{1, timedOut, true, false, true},
			{1, ok200, true, true, false},
		}, ""},
		{"held: any answer ends the hold and is judged", []step{
			{1, failed500, true, true, false},
			{1, failed500, false, true, false},
		}, ""},
		{"held: a 503 ends the hold and counts", []step{
			{1, busy503, true, true, false},
		}, ""},
		{"held: no answer keeps it paused", []step{
			{1, refused, true, false, true},
		}, "app unreachable: connection refused"},
		{"no answer opens at once", append(started,
			step{2, refused, false, false, true},
			step{3, refused, false, false, true},
		), "app unreachable: connection refused"},
		{"two 503s in a row open, from one event", append(started,
			step{2, busy503, false, true, false},
			step{2, busy503, false, false, true},
		), "every event answered HTTP 503"},
		{"a poison event failing on its own keeps counting", append(started,
			step{2, failed500, false, true, false},
			step{2, failed500, false, true, false},
			step{2, failed500, false, true, false},
			step{2, failed500, false, true, false},
		), ""},
		{"two events failing in a row open", append(started,
			step{2, failed500, false, true, false},
			step{3, timedOut, false, false, true},
		), "every event failed: timeout after 1s"},
		{"an answer in between starts the count anew", append(started,
			step{2, failed500, false, true, false},
			step{3, ok200, false, true, false},
			step{4, failed500, false, true, false},
			step{5, rejected404, false, true, false},
			step{6, busy503, false, true, false},
			step{7, ok200, false, true, false},
			step{8, busy503, false, true, false},
		), ""},
		{"failures while open do not count", append(started,
			step{2, refused, false, false, true},
			step{3, failed500, true, false, true},
			step{4, busy503, false, false, true},
		), "every event answered HTTP 503"},
		{"a 2xx closes it", append(started,
			step{2, refused, false, false, true},
			step{3, ok200, true, true, false},
			step{4, failed500, false, true, false},
		), ""},
		{"a rejecting 4xx closes it", append(started,
			step{2, refused, false, false, true},
			step{3, rejected404, true, true, false},
		), ""},
		{"a cancelled attempt changes nothing", append(started,
			step{2, failed500, false, true, false},
			step{3, cancelled, false, false, false},
			step{4, ok200, false, true, false},
			step{5, failed500, false, true, false},
		), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCircuit(testSub("s", "a", "").Retry, slog.New(slog.DiscardHandler), func(bool, bool) {})
			for i, s := range tt.steps {
				if got := c.record(s.seq, s.o, s.probe); got != s.wantCounts {
					t.Errorf("step %d (%+v): counts = %v, want %v", i, s.o, got, s.wantCounts)
				}
				if paused, _ := c.state(); paused != s.wantPaused {
					t.Errorf("step %d (%+v): paused = %v, want %v", i, s.o, paused, s.wantPaused)
				}
			}
			if _, reason := c.state(); reason != tt.wantReason {
				t.Errorf("reason = %q, want %q", reason, tt.wantReason)
			}
		})
	}
}

func TestCircuitProbesOneAtATime(t *testing.T) {
	r := config.Retry{MaxAttempts: 3, InitialBackoff: time.Hour, MaxBackoff: time.Hour, Multiplier: 2}
	c := newCircuit(r, slog.New(slog.DiscardHandler), func(bool, bool) {})
	done, cancel := context.WithCancel(context.Background())
	cancel() // allow with done only says whether there is a turn now
	probe, ok := c.allow(context.Background())
	if !probe || !ok {
		t.Fatalf("first allow while held = %v, %v; want a probe at once", probe, ok)
	}
	if _, ok := c.allow(done); ok {
		t.Error("a second delivery got a turn while the probe is out")
	}
	c.record(1, refused, true)
	if _, ok := c.allow(done); ok {
		t.Error("a delivery got a turn before the probe's backoff passed")
	}
	if got := c.untilProbe(); got <= 59*time.Minute {
		t.Errorf("untilProbe = %v, want about the initial backoff (1h)", got)
	}
	c.record(2, ok200, false) // an attempt in flight comes back delivered
	if probe, ok := c.allow(done); probe || !ok {
		t.Errorf("allow once closed = %v, %v; want no probe, at once", probe, ok)
	}
	if got := c.untilProbe(); got != 0 {
		t.Errorf("untilProbe once closed = %v, want 0", got)
	}
}

func TestCircuitWakesTheNextProbe(t *testing.T) {
	r := config.Retry{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Multiplier: 2}
	c := newCircuit(r, slog.New(slog.DiscardHandler), func(bool, bool) {})
	if probe, _ := c.allow(context.Background()); !probe {
		t.Fatal("no probe while held")
	}
	next := make(chan bool)
	go func() {
		probe, _ := c.allow(context.Background())
		next <- probe
	}()
	c.record(1, refused, true)
	if probe := <-next; !probe {
		t.Error("the waiting delivery did not get the next probe after the first failed")
	}
}
