package dedup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestDeliveredSharedBySidecars: two Delivered on one broker stand for two
// sidecars sharing a subscription; a record either makes is seen by the
// other at once, also when both append at the same time and their appends
// turn each other's down.
func TestDeliveredSharedBySidecars(t *testing.T) {
	c := openBroker(t, t.TempDir())
	a, b := openDelivered(t, c, time.Minute), openDelivered(t, c, time.Minute)
	mark(t, a, "orders", "/src", "first")
	if !seen(t, b, "orders", "/src", "first") {
		t.Fatal("a record of one sidecar is not seen by the other")
	}
	if seen(t, b, "orders", "/src", "never") {
		t.Fatal("Seen of an event nobody marked = true")
	}
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		d := []*Delivered{a, b}[i%2]
		wg.Go(func() {
			if err := d.Mark(ctx, "orders", "/src", fmt.Sprint("e", i)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Mark: %v", err)
	}
	for i := range 32 {
		for name, d := range map[string]*Delivered{"a": a, "b": b} {
			if !seen(t, d, "orders", "/src", fmt.Sprint("e", i)) {
				t.Errorf("%s does not see e%d", name, i)
			}
		}
	}
}

// TestDeliveredReadsTheLogAtStart: a sidecar that starts reads the records
// made before, however many (past the direct reads, with a consumer).
func TestDeliveredReadsTheLogAtStart(t *testing.T) {
	c := openBroker(t, t.TempDir())
	first := openDelivered(t, c, time.Minute)
	const n = 3 * directReads
	for i := range n {
		mark(t, first, "orders", "/src", fmt.Sprint("e", i))
	}
	mark(t, first, "billing", "/src", "other subscription")
	later := openDelivered(t, c, time.Minute)
	if !seen(t, later, "orders", "/src", fmt.Sprint("e", n-1)) {
		t.Fatal("the last record made before the start is not seen")
	}
	if got := later.subLog("orders").keys.len(); got != n {
		t.Errorf("read %d keys of orders, want %d", got, n)
	}
	for i := range n {
		if !seen(t, later, "orders", "/src", fmt.Sprint("e", i)) {
			t.Errorf("e%d, recorded before the start, is not seen", i)
		}
	}
	if seen(t, later, "orders", "/src", "other subscription") {
		t.Error("a record of another subscription is seen")
	}
}

// TestDeliveredForgetsReadRecordsAfterWindow: a record read from the log,
// not made here, leaves the window as one made here does.
func TestDeliveredForgetsReadRecordsAfterWindow(t *testing.T) {
	const window = time.Second
	c := openBroker(t, t.TempDir())
	a, b := openDelivered(t, c, window), openDelivered(t, c, window)
	start := time.Now()
	mark(t, a, "orders", "/src", "e1")
	if !seen(t, b, "orders", "/src", "e1") {
		t.Fatal("Seen right after the other's Mark = false, want true")
	}
	awaitForgotten(t, b, start, window, "orders", "/src", "e1")
	mark(t, a, "orders", "/src", "e2")
	if !seen(t, b, "orders", "/src", "e2") {
		t.Error("a record made after the earlier ones expired is not seen")
	}
}

// TestDeliveredAfterTheBrokerLostItsState: when the log is made anew (the
// broker lost its state and Ensure ran again), a sidecar that had read the
// old log reads the new one from its start, and appends to it.
func TestDeliveredAfterTheBrokerLostItsState(t *testing.T) {
	c := openBroker(t, t.TempDir())
	a, b := openDelivered(t, c, time.Minute), openDelivered(t, c, time.Minute)
	for i := range 5 {
		mark(t, a, "orders", "/src", fmt.Sprint("old", i))
	}
	if !seen(t, b, "orders", "/src", "old4") {
		t.Fatal("not seen before the loss")
	}
	for _, s := range []string{a.logCfg.Name, "KV_" + a.bucket} {
		if err := c.JetStream().DeleteStream(t.Context(), s); err != nil {
			t.Fatalf("DeleteStream(%q): %v", s, err)
		}
	}
	for _, d := range []*Delivered{a, b} {
		if err := d.Ensure(t.Context()); err != nil {
			t.Fatalf("Ensure: %v", err)
		}
	}
	mark(t, a, "orders", "/src", "new")
	if !seen(t, b, "orders", "/src", "new") {
		t.Error("a record in the new log, at a sequence below what b had read, is not seen")
	}
	mark(t, b, "orders", "/src", "new from b")
	if !seen(t, a, "orders", "/src", "new from b") {
		t.Error("b's append to the new log is not seen by a")
	}
}

// TestDeliveredAfterThePurge: records purged from the log (older ones
// gone while the stream stays) do not stop the sidecar reading new ones.
func TestDeliveredAfterThePurge(t *testing.T) {
	c := openBroker(t, t.TempDir())
	a, b := openDelivered(t, c, time.Minute), openDelivered(t, c, time.Minute)
	mark(t, a, "orders", "/src", "e1")
	if !seen(t, b, "orders", "/src", "e1") {
		t.Fatal("not seen before the purge")
	}
	if err := a.log.Load().stream.Purge(t.Context()); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	mark(t, b, "orders", "/src", "after b")
	mark(t, a, "orders", "/src", "after a")
	for name, d := range map[string]*Delivered{"a": a, "b": b} {
		for _, id := range []string{"after a", "after b"} {
			if !seen(t, d, "orders", "/src", id) {
				t.Errorf("%s does not see %q", name, id)
			}
		}
	}
	fresh := openDelivered(t, c, time.Minute)
	if seen(t, fresh, "orders", "/src", "e1") {
		t.Error("a purged record is seen by a sidecar that never read it")
	}
}

// TestDeliveredLookupOvertakenByAppends: a lookup of the subject's last
// record that appends of this sidecar overtook (it found a record older
// than those applied since it began) neither reads again what is applied
// nor takes the records for gone; one that found a record older than
// those applied when it began does.
func TestDeliveredLookupOvertakenByAppends(t *testing.T) {
	c := openBroker(t, t.TempDir())
	d := openDelivered(t, c, time.Minute)
	for i := range 3 {
		mark(t, d, "orders", "/src", fmt.Sprint("e", i))
	}
	l, h := d.subLog("orders"), d.log.Load()
	applied := l.position(h)
	if applied != 3 {
		t.Fatalf("applied %d after three appends to an empty log, want 3", applied)
	}
	if err := l.catchUpTo(t.Context(), h, 1, 2); err != nil {
		t.Fatalf("catchUpTo: %v", err)
	}
	if got := l.position(h); got != applied {
		t.Errorf("applied %d after an overtaken lookup, want %d still", got, applied)
	}
	if err := l.catchUpTo(t.Context(), h, applied, applied-1); err != nil {
		t.Fatalf("catchUpTo: %v", err)
	}
	if got := l.position(h); got != applied-1 {
		t.Errorf("applied %d after a lookup found records gone, want %d (read again from the start)", got, applied-1)
	}
}

// TestDeliveredSeesAnEarlierVersionsRecords: a delivery recorded as an
// earlier version did (a key of one token in the bucket) is seen while it
// is in the window; failure counts are no such record.
func TestDeliveredSeesAnEarlierVersionsRecords(t *testing.T) {
	c := openBroker(t, t.TempDir())
	d := openDelivered(t, c, time.Minute)
	if err := d.NoteFailure(t.Context(), "orders", 7, 1); err != nil {
		t.Fatalf("NoteFailure: %v", err)
	}
	if err := d.Ensure(t.Context()); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if until := d.legacyUntil.Load(); until != 0 {
		t.Errorf("a failure count counts as an earlier version's record: legacyUntil %d, want 0", until)
	}
	kv, err := d.store()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), legacyKey(deliveredDigest("orders", "/src", "old")), nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if seen(t, d, "orders", "/src", "old") {
		t.Error("seen before the sidecar looked for an earlier version's records; want it to look once a window")
	}
	upgraded := openDelivered(t, c, time.Minute)
	if !seen(t, upgraded, "orders", "/src", "old") {
		t.Error("an earlier version's record is not seen")
	}
	if seen(t, upgraded, "orders", "/src", "other") {
		t.Error("an event nobody recorded is seen")
	}
}

// TestLookRidesTheNextAppend: a lookup that misses while an append of
// this sidecar's records waits to begin waits for that append instead of
// looking the log up, and answers as a lookup would: another sidecar's
// record stored before it is seen (the append, turned down by it, read
// it), a key nobody recorded is not. When the append it waited for fails,
// it looks the log up after all, and sees a record stored since the
// append before.
func TestLookRidesTheNextAppend(t *testing.T) {
	c := openBroker(t, t.TempDir())
	a, b := openDelivered(t, c, time.Minute), openDelivered(t, c, time.Minute)
	l := a.subLog("orders")
	var syncs atomic.Int32
	syncRun := l.syncs.run
	l.syncs.run = func(r *round) error {
		syncs.Add(1)
		return syncRun(r)
	}
	// The first append signals started1 and waits for release1 before it
	// begins, the third signals stored3 and waits for release3 once it was
	// stored, the fourth fails.
	started1, release1 := make(chan struct{}), make(chan struct{})
	stored3, release3 := make(chan struct{}), make(chan struct{})
	errFailed := errors.New("the append failed")
	var runs atomic.Int32
	appendRun := l.appends.run
	l.appends.run = func(r *round) error {
		switch runs.Add(1) {
		case 1:
			close(started1)
			<-release1
		case 3:
			err := appendRun(r)
			close(stored3)
			<-release3
			return err
		case 4:
			return errFailed
		}
		return appendRun(r)
	}
	key := func(id string) *logKey {
		sum := deliveredDigest("orders", "/src", id)
		k := logKey(sum[:logKeyLen])
		return &k
	}
	ctx := t.Context()
	// lead waits for r, which runs it, on a goroutine of its own.
	lead := func(r *round) <-chan error {
		done := make(chan error, 1)
		go func() { done <- l.appends.wait(ctx, r) }()
		return done
	}

	first := lead(l.appends.join(key("a1")))
	<-started1
	second := l.appends.join(key("a2"))
	mark(t, b, "orders", "/src", "theirs")
	theirs, never := a.Look("orders", "/src", "theirs"), a.Look("orders", "/src", "never")
	close(release1)
	if err := <-first; err != nil {
		t.Fatalf("first append: %v", err)
	}
	if err := l.appends.wait(ctx, second); err != nil {
		t.Fatalf("second append: %v", err)
	}
	if ok, err := theirs.Wait(ctx); !ok || err != nil {
		t.Errorf("Wait for another sidecar's record stored before the lookup = %v, %v; want true", ok, err)
	}
	if ok, err := never.Wait(ctx); ok || err != nil {
		t.Errorf("Wait for a key nobody recorded = %v, %v; want false", ok, err)
	}
	if n := syncs.Load(); n != 0 {
		t.Errorf("lookups waiting for an append looked the log up %d times, want 0", n)
	}

	third := lead(l.appends.join(key("a3")))
	<-stored3
	fourth := l.appends.join(key("a4"))
	mark(t, b, "orders", "/src", "theirs later")
	later := a.Look("orders", "/src", "theirs later")
	close(release3)
	if err := <-third; err != nil {
		t.Fatalf("third append: %v", err)
	}
	if err := l.appends.wait(ctx, fourth); !errors.Is(err, errFailed) {
		t.Fatalf("fourth append: %v, want %v", err, errFailed)
	}
	if ok, err := later.Wait(ctx); !ok || err != nil {
		t.Errorf("Wait after the append it waited for failed = %v, %v; want true (looked up)", ok, err)
	}
	if n := syncs.Load(); n != 1 {
		t.Errorf("looked the log up %d times after the append failed, want 1", n)
	}
}

// TestLookWaitsForTheNextMark: a lookup that misses with no append in
// flight or waiting waits for the next one, which a Mark made meanwhile
// starts and which serves both; when it is waited for before any Mark,
// its round runs without keys, as a lookup of the log.
func TestLookWaitsForTheNextMark(t *testing.T) {
	c := openBroker(t, t.TempDir())
	a, b := openDelivered(t, c, time.Minute), openDelivered(t, c, time.Minute)
	l := a.subLog("orders")
	var mu sync.Mutex
	var runs []int // the keys each round of appends carried
	appendRun := l.appends.run
	l.appends.run = func(r *round) error {
		mu.Lock()
		runs = append(runs, len(r.keys))
		mu.Unlock()
		return appendRun(r)
	}
	ran := func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(runs)
	}
	mark(t, b, "orders", "/src", "theirs")
	lk := a.Look("orders", "/src", "theirs")
	mark(t, a, "orders", "/src", "mine")
	if ok, err := lk.Wait(t.Context()); !ok || err != nil {
		t.Errorf("Wait for another sidecar's record stored before the lookup = %v, %v; want true", ok, err)
	}
	if got := ran(); !slices.Equal(got, []int{1}) {
		t.Errorf("rounds carried %v keys, want [1]: the Mark's append, which the lookup waited for", got)
	}
	mark(t, b, "orders", "/src", "theirs again")
	if !seen(t, a, "orders", "/src", "theirs again") {
		t.Error("another sidecar's record is not seen by a lookup no Mark served")
	}
	if got := ran(); !slices.Equal(got, []int{1, 0}) {
		t.Errorf("rounds carried %v keys, want [1 0]: then the lookup's own, without keys", got)
	}
}

// TestRoundsGroupCallers: callers that join while a round is in flight
// share the next one, whose request starts after they all joined.
func TestRoundsGroupCallers(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var runs [][]logKey
	g := rounds{run: func(r *round) error {
		mu.Lock()
		runs = append(runs, append([]logKey(nil), r.keys...))
		first := len(runs) == 1
		mu.Unlock()
		if first {
			close(started)
			<-release
		}
		return nil
	}}
	k := func(b byte) *logKey { return &logKey{b} }
	ctx := context.Background()
	first := g.join(k(0))
	firstDone := make(chan error, 1)
	go func() { firstDone <- g.wait(ctx, first) }()
	<-started
	var later []*round
	for i := range 10 {
		later = append(later, g.join(k(byte(i+1))))
	}
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	for _, r := range later {
		if err := g.wait(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != 2 || len(runs[0]) != 1 || len(runs[1]) != 10 {
		t.Fatalf("runs carried %d rounds %v, want 2: the first caller's key, then the other 10", len(runs), runs)
	}
	for i, k := range runs[1] {
		if k[0] != byte(i+1) {
			t.Errorf("second round's key %d = %d, want %d", i, k[0], i+1)
		}
	}
}

// TestKeySetWindow: a key is in the set for the window after its latest
// record, and swept once it has left.
func TestKeySetWindow(t *testing.T) {
	s := keySet{window: time.Minute}
	t0 := time.Now()
	s.add(logKey{1}, t0)
	s.add(logKey{2}, t0.Add(30*time.Second))
	s.add(logKey{1}, t0.Add(-time.Hour)) // an older record of a newer key changes nothing
	if !s.has(logKey{1}, t0.Add(59*time.Second)) || s.has(logKey{1}, t0.Add(time.Minute)) {
		t.Error("key 1 is not in the set for exactly the window after its record")
	}
	s.add(logKey{3}, t0.Add(75*time.Second)) // a quarter window since the first add: sweeps
	if got := s.len(); got != 2 {
		t.Errorf("after the sweep %d keys, want 2 (key 1 gone)", got)
	}
	if !s.has(logKey{2}, t0.Add(75*time.Second)) {
		t.Error("key 2, in the window, was swept")
	}
}

// TestDeliveredLogSubjects: each subscription has its own subject under the
// stream's, whatever characters its name holds.
func TestDeliveredLogSubjects(t *testing.T) {
	c := openBroker(t, t.TempDir())
	d := openDelivered(t, c, time.Minute)
	mark(t, d, "orders.v1 *>", "/src", "e1")
	mark(t, d, "billing", "/src", "e1")
	info, err := d.log.Load().stream.Info(t.Context(), jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if len(info.State.Subjects) != 2 {
		t.Fatalf("log subjects %v, want 2", info.State.Subjects)
	}
	for subj := range info.State.Subjects {
		if len(subj) != len("$EVENTSIDECAR.delivered.EVENTS.")+24 || subj[:len("$EVENTSIDECAR.delivered.EVENTS.")] != "$EVENTSIDECAR.delivered.EVENTS." {
			t.Errorf("log subject %q, want $EVENTSIDECAR.delivered.EVENTS.<24 hex digits>", subj)
		}
	}
}
