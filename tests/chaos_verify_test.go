package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	// chaosDeadline bounds every wait of the chaos suite for the system to
	// heal or catch up: generous, for shared machines running -race.
	chaosDeadline = 120 * time.Second
	// steadyEvents is how many more events steady waits to see published
	// and delivered.
	steadyEvents = 100
)

// waitWithin checks cond every 10ms until it holds or within passes, and
// reports whether it held. Unlike poll.Until it does not end the test: a
// chaos case goes on to count and report what happened.
func waitWithin(within time.Duration, cond func() bool) bool {
	deadline := time.After(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			return false
		case <-tick.C:
		}
	}
	return true
}

// steady waits until steadyEvents more events have been answered 2xx to
// the producer and steadyEvents more deliveries answered 2xx by the app.
func steady(t *testing.T, p *producer, app *chaosApp, what string) {
	t.Helper()
	published, delivered := p.ackedCount()+steadyEvents, app.okCount()+steadyEvents
	if !waitWithin(chaosDeadline, func() bool { return p.ackedCount() >= published && app.okCount() >= delivered }) {
		t.Errorf("%s: not %d more events published and delivered within %s (%s; producer %s)",
			what, steadyEvents, chaosDeadline, app, p.answers())
	}
}

// noHeal is the heal time of a fault the system did not heal from within
// chaosDeadline.
const noHeal time.Duration = -1

// healed returns how long after from the app first answered 2xx for a
// delivery: delivery resumed. It fails the test (but lets it go on) and
// returns noHeal when that does not happen within chaosDeadline.
func healed(t *testing.T, app *chaosApp, from time.Time, what string) time.Duration {
	t.Helper()
	var at time.Time
	if !waitWithin(chaosDeadline, func() bool {
		var ok bool
		at, ok = app.firstOKAfter(from)
		return ok
	}) {
		t.Errorf("%s: no delivery within %s (%s)", what, chaosDeadline, app)
		return noHeal
	}
	return at.Sub(from)
}

// healedBeyond returns how long after from the app had answered 2xx for
// more events first received after from than the sidecar could have held
// at from (max_in_flight being delivered, and a pull's worth of
// max_in_flight fetched): the broker handed out events again. It fails
// the test (but lets it go on) and returns noHeal when that does not
// happen within chaosDeadline.
func healedBeyond(t *testing.T, app *chaosApp, from time.Time, what string) time.Duration {
	t.Helper()
	const beyond = 2*chaosInFlight + 1
	var oks []time.Time
	if !waitWithin(chaosDeadline, func() bool {
		oks = app.newSince(from)
		return len(oks) >= beyond
	}) {
		t.Errorf("%s: %d new events delivered within %s, want %d (%s)", what, len(oks), chaosDeadline, beyond, app)
		return noHeal
	}
	return oks[beyond-1].Sub(from)
}

// healedAll returns how long after from the app had answered 2xx for
// every one of ids. It fails the test (but lets it go on) and returns
// noHeal when that does not happen within chaosDeadline.
func healedAll(t *testing.T, app *chaosApp, ids []string, from time.Time, what string) time.Duration {
	t.Helper()
	if !waitWithin(chaosDeadline, func() bool { return len(app.missing(ids)) == 0 }) {
		t.Errorf("%s: %d of %d events not delivered within %s", what, len(app.missing(ids)), len(ids), chaosDeadline)
		return noHeal
	}
	var last time.Time
	for _, id := range ids {
		if at, _ := app.delivered(id); at.After(last) {
			last = at
		}
	}
	return max(last.Sub(from), 0)
}

// formatHeal formats a heal time for the counts line.
func formatHeal(d time.Duration) string {
	if d == noHeal {
		return "none"
	}
	return d.Round(10 * time.Millisecond).String()
}

// chaosCase is one run of the chaos suite, checked once its fault is over.
type chaosCase struct {
	name    string
	p       *producer
	app     *chaosApp
	natsURL string
	// dupAllowed is how many receipts of events the app had already
	// answered 2xx for are allowed: max_in_flight per sidecar killed
	// (contract §5), else none.
	dupAllowed int
	heal       time.Duration
	extra      string     // more key=value pairs for the counts line
	sidecars   []*sidecar // whose logs end a failure's report
}

// chaosCounts is what a chaos case counted.
type chaosCounts struct {
	published, stored, delivered, duplicates, deadLettered, lost int
	// lateAnswers are receipts again of events whose attempt a sidecar
	// logged as timed out: the app answered 2xx after the sidecar gave up
	// (a stall of a loaded machine), so the sidecar never had the answer
	// and its retry is not a duplicate it could have avoided.
	lateAnswers                                        int
	unconfirmed, falseClaims, undelivered, storedTwice int
	samples                                            map[string][]string // a few offending ids per check
}

// check stops the producer, waits until every event answered 2xx reached
// the app and the subscription is settled, reads the stream, logs the
// counts line and asserts the suite's rules:
//   - every event answered 2xx is in the stream, at the sequence its
//     answer gave, and the app answered 2xx for it (lost counts those
//     that are not);
//   - every event a non-2xx answer reported stored is in the stream, at
//     that sequence (false_claims);
//   - every stored event reached the app, answered 2xx or not
//     (undelivered), and none is stored twice (stored_twice);
//   - the app got no event again that it had answered 2xx for, beyond
//     dupAllowed (duplicates), and nothing was dead-lettered;
//   - every answer was well-formed (the producer's faults).
func (c *chaosCase) check(t *testing.T) {
	t.Helper()
	c.p.stop()
	acked := c.p.ackedSnapshot()
	ids := make([]string, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	if !waitWithin(chaosDeadline, func() bool { return len(c.app.missing(ids)) == 0 }) {
		t.Errorf("not every event answered 2xx reached the app within %s", chaosDeadline)
	}
	s := stream(t, c.natsURL)
	if !waitWithin(chaosDeadline, func() bool { return consumerSettled(s, chaosSub) }) {
		t.Errorf("subscription %s not settled within %s", chaosSub, chaosDeadline)
	}
	n := c.count(acked, readStream(t, s))
	t.Logf("chaos: case=%s published_2xx=%d stored=%d delivered=%d duplicates=%d dead_lettered=%d lost=%d heal=%s"+
		" unconfirmed_stored=%d false_claims=%d undelivered=%d stored_twice=%d late_answers=%d %s%s",
		c.name, n.published, n.stored, n.delivered, n.duplicates, n.deadLettered, n.lost, formatHeal(c.heal),
		n.unconfirmed, n.falseClaims, n.undelivered, n.storedTwice, n.lateAnswers, c.p.answers(), c.extra)
	c.assert(t, n)
	if t.Failed() {
		for i, sc := range c.sidecars {
			t.Logf("sidecar %d's log, without debug lines, its end:\n%s", i, logTail(sc.log(), 60))
		}
	}
}

// logTail returns the last n lines of a sidecar's log that are not debug
// lines.
func logTail(log string, n int) string {
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if !strings.Contains(line, `"level":"DEBUG"`) {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// consumerSettled reports whether the broker holds none of the consumer's
// events pending or delivered but unsettled.
func consumerSettled(s jetstream.Stream, name string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := s.Consumer(ctx, name)
	if err != nil {
		return false
	}
	info := cons.CachedInfo()
	return info.NumPending == 0 && info.NumAckPending == 0
}

// count compares what the producer was told, what the stream holds and
// what the app saw.
func (c *chaosCase) count(acked map[string]ack, st streamContents) chaosCounts {
	n := chaosCounts{published: len(acked), stored: len(st.copies), deadLettered: len(st.deadLetters),
		samples: map[string][]string{"dead_lettered": st.deadLetters[:min(5, len(st.deadLetters))]}}
	var dups []string
	n.delivered, dups = c.app.tally()
	dups, n.lateAnswers = c.withoutTimedOut(dups)
	n.duplicates, n.samples["duplicates"] = len(dups), dups[:min(5, len(dups))]
	note := func(check, id string, count *int) {
		*count++
		if len(n.samples[check]) < 5 {
			n.samples[check] = append(n.samples[check], id)
		}
	}
	for id, a := range acked {
		if _, ok := c.app.delivered(id); st.bySeq[a.seq] != id || !ok {
			note("lost", fmt.Sprintf("%s (sequence %d holds %q)", id, a.seq, st.bySeq[a.seq]), &n.lost)
		}
	}
	c.p.mu.Lock()
	for id, seq := range c.p.claimed {
		if (seq != 0 && st.bySeq[seq] != id) || st.copies[id] == 0 {
			note("false_claims", fmt.Sprintf("%s at %d", id, seq), &n.falseClaims)
		}
	}
	c.p.mu.Unlock()
	for id, copies := range st.copies {
		if _, ok := acked[id]; !ok {
			n.unconfirmed++
		}
		if _, ok := c.app.delivered(id); !ok {
			note("undelivered", id, &n.undelivered)
		}
		if copies > 1 {
			note("stored_twice", id, &n.storedTwice)
		}
	}
	return n
}

// assert fails the test for every rule the counts break.
func (c *chaosCase) assert(t *testing.T, n chaosCounts) {
	t.Helper()
	for _, r := range []struct {
		check string
		got   int
		limit int
		rule  string
	}{
		{"lost", n.lost, 0, "events answered 2xx missing from the stream or the app"},
		{"false_claims", n.falseClaims, 0, "events a non-2xx answer reported stored that are not"},
		{"undelivered", n.undelivered, 0, "stored events that never reached the app"},
		{"stored_twice", n.storedTwice, 0, "events stored more than once"},
		{"dead_lettered", n.deadLettered, 0, "dead letters (an outage must not dead-letter)"},
		{"duplicates", n.duplicates, c.dupAllowed, "receipts of events the app had already answered 2xx for"},
	} {
		if r.got > r.limit {
			t.Errorf("%s=%d (at most %d): %s, e.g. %v", r.check, r.got, r.limit, r.rule, n.samples[r.check])
		}
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if len(c.p.faults) > 0 {
		t.Errorf("%d answers break the contract, e.g. %v", len(c.p.faults), c.p.faults[:min(5, len(c.p.faults))])
	}
}

// streamContents is what the stream holds of the chaos suite.
type streamContents struct {
	bySeq       map[uint64]string // the event id at each sequence of the suite's topic
	copies      map[string]int    // by event id: how often it is stored on the suite's topic
	deadLetters []string          // the subscription's dead letters: "id: reason"
}

// readStream reads every message of the stream with an ordered consumer.
func readStream(t *testing.T, s jetstream.Stream) streamContents {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), chaosDeadline)
	defer cancel()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	st := streamContents{bySeq: map[uint64]string{}, copies: map[string]int{}}
	for seq := uint64(0); seq < info.State.LastSeq && ctx.Err() == nil; {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatalf("read the stream: %v", err)
		}
		for msg := range batch.Messages() {
			meta, err := msg.Metadata()
			if err != nil {
				t.Fatalf("message metadata: %v", err)
			}
			seq = meta.Sequence.Stream
			st.add(seq, msg)
		}
		if err := batch.Error(); err != nil {
			t.Fatalf("read the stream: %v", err)
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("read the stream up to sequence %d: %v", info.State.LastSeq, ctx.Err())
	}
	return st
}

// add notes the message at sequence seq.
func (st *streamContents) add(seq uint64, msg jetstream.Msg) {
	id := msg.Headers().Get("ce-id")
	switch msg.Subject() {
	case "events." + chaosTopic:
		st.bySeq[seq] = id
		st.copies[id]++
	case "events.deadletter." + chaosSub:
		st.deadLetters = append(st.deadLetters, id+": "+msg.Headers().Get("ce-dlqreason"))
	}
}

// withoutTimedOut returns the duplicate receipts (each starting with the
// event id) but those of events an attempt of which a sidecar of c logged
// as timed out, and how many it left out.
func (c *chaosCase) withoutTimedOut(dups []string) (kept []string, late int) {
	timedOut := map[string]bool{}
	for _, sc := range c.sidecars {
		for line := range strings.Lines(sc.log()) {
			var rec struct{ ID, Reason string }
			if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Reason, "timeout after ") {
				timedOut[rec.ID] = true
			}
		}
	}
	for _, d := range dups {
		id, _, _ := strings.Cut(d, " ")
		if timedOut[id] {
			late++
			continue
		}
		kept = append(kept, d)
	}
	return kept, late
}
