package egress

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// How a dispatcher waits for its consumer's events and notices when the
// consumer stops answering (a pull request lost with the consumer's
// leader, say).
const (
	// pullHeartbeat is how often the broker tells a waiting pull request,
	// when no event comes, that it still holds it. nats.go reports a
	// missed heartbeat (jetstream.ErrNoHeartbeat) after twice that within
	// one wait for an event, and asks again.
	pullHeartbeat = 2 * time.Second
	// pullExpiry is how long one pull request lasts.
	pullExpiry = 30 * time.Second
	// nextWait bounds one wait for the next event soon after the last
	// one: nats.go's pull iterator can miss re-issuing its pull request
	// when a batch arrives before it has noted the previous one done, and
	// each new wait makes it check again.
	nextWait = 100 * time.Millisecond
	// quietAfter is how long after its last event a dispatcher waits with
	// nextWait; then each wait lasts heartbeatWaits heartbeats, long enough
	// for a missed heartbeat to show.
	quietAfter     = time.Second
	heartbeatWaits = 3
	// stallAfter is how long a dispatcher with a free slot may go without
	// word from its consumer (an event, or a wait its heartbeats kept
	// alive) before readiness says so.
	stallAfter = 15 * time.Second
)

// watch tracks whether a dispatcher hears from its consumer while it
// waits for an event with a free slot: it logs once when the consumer
// falls silent and once when it answers again, and says so to readiness
// while the silence lasts. Safe for concurrent use.
type watch struct {
	name       string
	log        *slog.Logger
	heartbeat  time.Duration
	stallAfter time.Duration

	mu        sync.Mutex
	since     time.Time // the last word while waiting; zero while not waiting
	lastEvent time.Time // when the last event came
	silent    bool      // a heartbeat was missed since the last word
}

func newWatch(name string, log *slog.Logger) *watch {
	return &watch{name: name, log: log, heartbeat: pullHeartbeat, stallAfter: stallAfter}
}

// waiting notes that the dispatcher waits for an event with a free slot.
func (w *watch) waiting() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.since = time.Now()
}

// busy notes that the dispatcher no longer waits (it got an event, or
// stopped).
func (w *watch) busy() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.since = time.Time{}
}

// wait is how long the next wait for an event may last, and whether it is
// long enough to show a missed heartbeat.
func (w *watch) wait() (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if time.Since(w.lastEvent) < quietAfter {
		return nextWait, false
	}
	return heartbeatWaits * w.heartbeat, true
}

// heard notes word from the consumer; event says it was an event.
func (w *watch) heard(event bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if event {
		w.lastEvent = now
	}
	if w.silent {
		w.silent = false
		w.log.Info("the subscription's consumer answers again", "silent_for", now.Sub(w.since).Round(time.Millisecond))
	}
	if !w.since.IsZero() {
		w.since = now
	}
}

// missed notes a missed heartbeat: the pull request is lost, and nats.go
// issues another.
func (w *watch) missed() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.silent {
		w.silent = true
		w.log.Warn("no word from the subscription's consumer; asking again", "silent_for", time.Since(w.since).Round(time.Millisecond))
	}
}

// err says when the dispatcher has waited with a free slot, for longer
// than stallAfter, without word from its consumer.
func (w *watch) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.since.IsZero() {
		return nil
	}
	if silence := time.Since(w.since); silence > w.stallAfter {
		return fmt.Errorf("egress: subscription %q: no word from its consumer for %s", w.name, silence.Round(time.Second))
	}
	return nil
}

// dispatchers is the set of dispatchers delivering one subscription in
// this sidecar. The zero value is empty; safe for concurrent use.
type dispatchers struct {
	mu  sync.Mutex
	set map[*dispatcher]struct{}
}

func (ds *dispatchers) add(d *dispatcher) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.set == nil {
		ds.set = map[*dispatcher]struct{}{}
	}
	ds.set[d] = struct{}{}
}

func (ds *dispatchers) remove(d *dispatcher) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	delete(ds.set, d)
}

// stalled returns the first stall among the dispatchers, if any.
func (ds *dispatchers) stalled() error {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for d := range ds.set {
		if err := d.watch.err(); err != nil {
			return err
		}
	}
	return nil
}

// stalled returns an error when a dispatcher of a configured or Dapr
// subscription has waited too long without word from its consumer (see
// watch).
func (m *Manager) stalled() error {
	for _, s := range m.listed() {
		if err := s.running.stalled(); err != nil {
			return err
		}
	}
	return nil
}
