package egress

import "context"

// countStep counts the result of each attempt, as the attempt limit and
// the circuit made it, in t: delivered, retry, dead_letter (counted before
// the dead letter is stored) or paused (an attempt that did not count).
func countStep(t tally) middleware {
	return func(next handler) handler {
		return func(ctx context.Context, it *item) result {
			r := next(ctx, it)
			t.count(r)
			return r
		}
	}
}

func (t tally) count(r result) {
	switch {
	case r.end == endPaused:
		t.outcome(outcomePaused)
	case r.end != endOutcome: // stopped before an answer: no outcome
	case r.Kind == Delivered:
		t.outcome(Delivered.String())
		t.s.delivered.Add(1)
	case r.Kind == Retry:
		t.outcome(Retry.String())
		t.s.retried.Add(1)
	case r.Kind == Dead:
		t.outcome(Dead.String())
	}
}

// measureStep keeps the in-flight gauge and count of t while an attempt
// is made, and observes how long it took.
func measureStep(t tally) middleware {
	inFlight := t.m.inFlight.WithLabelValues(t.s.sub.Name)
	latency := t.m.latency.WithLabelValues(t.s.sub.Name)
	return func(next handler) handler {
		return func(ctx context.Context, it *item) result {
			t.s.inFlight.Add(1)
			inFlight.Inc()
			r := next(ctx, it)
			inFlight.Dec()
			t.s.inFlight.Add(-1)
			latency.Observe(r.Took.Seconds())
			return r
		}
	}
}
