package dedup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
)

// openBroker opens an embedded, in-process broker storing in dir and
// closes it when the test ends.
func openBroker(t *testing.T, dir string) *broker.Client {
	t.Helper()
	cfg := config.Default().Broker
	cfg.Embedded.StoreDir = dir
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := broker.Open(t.Context(), cfg, "eventsidecar dedup test", log)
	if err != nil {
		t.Fatalf("broker.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func openDelivered(t *testing.T, c *broker.Client, window time.Duration) *Delivered {
	t.Helper()
	d, err := OpenDelivered(t.Context(), c.JetStream(), c.Stream(), window, 1)
	if err != nil {
		t.Fatalf("OpenDelivered: %v", err)
	}
	return d
}

func seen(t *testing.T, d *Delivered, sub, source, id string) bool {
	t.Helper()
	ok, err := d.Seen(t.Context(), sub, source, id)
	if err != nil {
		t.Fatalf("Seen(%q, %q, %q): %v", sub, source, id, err)
	}
	return ok
}

func mark(t *testing.T, d *Delivered, sub, source, id string) {
	t.Helper()
	if err := d.Mark(t.Context(), sub, source, id); err != nil {
		t.Fatalf("Mark(%q, %q, %q): %v", sub, source, id, err)
	}
}

func TestDeliveredSeenAndMark(t *testing.T) {
	d := openDelivered(t, openBroker(t, t.TempDir()), time.Minute)
	if seen(t, d, "orders", "/src", "e1") {
		t.Fatal("Seen before Mark = true, want false")
	}
	mark(t, d, "orders", "/src", "e1")
	tests := []struct {
		name, sub, source, id string
		want                  bool
	}{
		{"same event", "orders", "/src", "e1", true},
		{"other subscription", "billing", "/src", "e1", false},
		{"other source", "orders", "/other", "e1", false},
		{"other id", "orders", "/src", "e2", false},
		{"parts shifted", "orders/src", "", "e1", false},
		{"characters outside the key rules", "orders", "urn:a b*>", "ü.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := seen(t, d, tt.sub, tt.source, tt.id); got != tt.want {
				t.Errorf("Seen(%q, %q, %q) = %v, want %v", tt.sub, tt.source, tt.id, got, tt.want)
			}
		})
	}
	mark(t, d, "orders", "urn:a b*>", "ü.1")
	if !seen(t, d, "orders", "urn:a b*>", "ü.1") {
		t.Error("Seen after Mark of an event with unusual characters = false, want true")
	}
}

func TestDeliveredFailures(t *testing.T) {
	d := openDelivered(t, openBroker(t, t.TempDir()), time.Minute)
	ctx := context.Background()
	count := func(sub string, seq uint64) int {
		t.Helper()
		n, err := d.Failures(ctx, sub, seq)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count("orders", 7); n != 0 {
		t.Fatalf("Failures before any = %d, want 0", n)
	}
	for _, n := range []int{1, 2, 2} { // a record made twice does no harm
		if err := d.NoteFailure(ctx, "orders", 7, n); err != nil {
			t.Fatal(err)
		}
	}
	if n := count("orders", 7); n != 2 {
		t.Errorf("Failures after attempts 1 and 2 failed = %d, want 2", n)
	}
	if n := count("orders", 8) + count("billing", 7); n != 0 {
		t.Errorf("other events or subscriptions counted %d failures, want 0", n)
	}
}

func TestDeliveredExpiresAfterWindow(t *testing.T) {
	const window = time.Second
	d := openDelivered(t, openBroker(t, t.TempDir()), window)
	start := time.Now()
	mark(t, d, "orders", "/src", "e1")
	if !seen(t, d, "orders", "/src", "e1") {
		t.Fatal("Seen right after Mark = false, want true")
	}
	awaitForgotten(t, d, start, window, "orders", "/src", "e1")
}

func TestOpenDeliveredIsIdempotentAndUpdatesTTL(t *testing.T) {
	c := openBroker(t, t.TempDir())
	first := openDelivered(t, c, time.Minute)
	mark(t, first, "orders", "/src", "e1")
	tests := []struct {
		name   string
		window time.Duration
	}{
		{"same window", time.Minute},
		{"longer window", 5 * time.Minute},
		{"shorter window", 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openDelivered(t, c, tt.window)
			st, err := d.kv.Load().Status(t.Context())
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			if st.TTL() != tt.window {
				t.Errorf("TTL = %s, want %s", st.TTL(), tt.window)
			}
			if st.History() != 1 {
				t.Errorf("History = %d, want 1", st.History())
			}
			if st.Bucket() != "eventsidecar-delivered-EVENTS" {
				t.Errorf("Bucket = %q, want %q", st.Bucket(), "eventsidecar-delivered-EVENTS")
			}
			info, err := d.log.Load().stream.Info(t.Context())
			if err != nil {
				t.Fatalf("log Info: %v", err)
			}
			if info.Config.MaxAge != tt.window || !info.Config.AllowDirect {
				t.Errorf("log MaxAge %s AllowDirect %v, want %s, true", info.Config.MaxAge, info.Config.AllowDirect, tt.window)
			}
			if !seen(t, d, "orders", "/src", "e1") {
				t.Error("an earlier Mark is lost after reopening the bucket")
			}
		})
	}
}

func TestDeliveredBeforeEnsure(t *testing.T) {
	c := openBroker(t, t.TempDir())
	d, err := NewDelivered(c.JetStream(), c.Stream(), time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Seen(t.Context(), "orders", "/src", "e1"); !errors.Is(err, ErrNotReady) {
		t.Errorf("Seen before Ensure = %v, want ErrNotReady", err)
	}
	if err := d.Mark(t.Context(), "orders", "/src", "e1"); !errors.Is(err, ErrNotReady) {
		t.Errorf("Mark before Ensure = %v, want ErrNotReady", err)
	}
	if err := d.NoteFailure(t.Context(), "orders", 1, 1); !errors.Is(err, ErrNotReady) {
		t.Errorf("NoteFailure before Ensure = %v, want ErrNotReady", err)
	}
	if err := d.Ensure(t.Context()); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	mark(t, d, "orders", "/src", "e1")
	if !seen(t, d, "orders", "/src", "e1") {
		t.Error("not seen after Ensure and Mark")
	}
}

func TestOpenDeliveredRefusesNonPositiveWindow(t *testing.T) {
	c := openBroker(t, t.TempDir())
	for _, window := range []time.Duration{0, -time.Second} {
		t.Run(window.String(), func(t *testing.T) {
			if _, err := OpenDelivered(t.Context(), c.JetStream(), c.Stream(), window, 1); err == nil {
				t.Errorf("OpenDelivered(window %s) succeeded, want an error", window)
			}
		})
	}
}

func TestDeliveredSurvivesBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	c := openBroker(t, dir)
	mark(t, openDelivered(t, c, time.Minute), "orders", "/src", "e1")
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	d := openDelivered(t, openBroker(t, dir), time.Minute)
	if !seen(t, d, "orders", "/src", "e1") {
		t.Error("Seen after reopening the broker on the same store = false, want true")
	}
}

func TestDeliveredConcurrentUse(t *testing.T) {
	d := openDelivered(t, openBroker(t, t.TempDir()), time.Minute)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			id := fmt.Sprintf("e%d", i)
			if err := d.Mark(ctx, "orders", "/src", id); err != nil {
				errs <- err
				return
			}
			if ok, err := d.Seen(ctx, "orders", "/src", id); err != nil || !ok {
				errs <- fmt.Errorf("Seen(%q) = %v, %v; want true", id, ok, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestDeliveredBucket(t *testing.T) {
	tests := []struct{ name, stream, want string }{
		{"plain", "EVENTS", "eventsidecar-delivered-EVENTS"},
		{"underscore and dash", "my_events-1", "eventsidecar-delivered-my_events-1"},
		{"other characters", "ev@nts#ü", "eventsidecar-delivered-ev_nts__"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deliveredBucket(tt.stream); got != tt.want {
				t.Errorf("deliveredBucket(%q) = %q, want %q", tt.stream, got, tt.want)
			}
		})
	}
}

func TestLegacyKey(t *testing.T) {
	valid := regexp.MustCompile(`^[-/_=a-zA-Z0-9]+$`) // the KV key rules, less "."
	tests := []struct{ name, sub, source, id string }{
		{"plain", "orders", "/src", "e1"},
		{"unusual characters", "orders", "urn:a b*>", "ü.1\x7f"},
		{"empty", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := legacyKey(deliveredDigest(tt.sub, tt.source, tt.id))
			if !valid.MatchString(key) {
				t.Errorf("legacyKey of (%q, %q, %q) = %q, not a valid KV key", tt.sub, tt.source, tt.id, key)
			}
			if again := legacyKey(deliveredDigest(tt.sub, tt.source, tt.id)); again != key {
				t.Errorf("legacyKey is not stable: %q, then %q", key, again)
			}
		})
	}
}

// awaitForgotten waits until d no longer sees the event marked at start,
// and fails the test when that comes before window has passed, or long
// after it.
func awaitForgotten(t *testing.T, d *Delivered, start time.Time, window time.Duration, subscription, source, id string) {
	t.Helper()
	deadline := start.Add(window + 10*time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for seen(t, d, subscription, source, id) {
		if time.Now().After(deadline) {
			t.Fatalf("still seen %s after Mark, window %s", time.Since(start), window)
		}
		<-tick.C
	}
	if took := time.Since(start); took < window {
		t.Errorf("forgotten after %s, before the window %s", took, window)
	}
}

// BenchmarkMarkThenLook is max_in_flight 1's pattern on an embedded
// broker: the next event's lookup begins, this one's delivery is recorded,
// and the lookup is answered (by the record's append).
func BenchmarkMarkThenLook(b *testing.B) {
	dir := b.TempDir()
	cfg := config.Default().Broker
	cfg.Embedded.StoreDir = dir
	c, err := broker.Open(b.Context(), cfg, "eventsidecar dedup bench", slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatalf("broker.Open: %v", err)
	}
	defer c.Close()
	d, err := OpenDelivered(b.Context(), c.JetStream(), c.Stream(), time.Minute, 1)
	if err != nil {
		b.Fatalf("OpenDelivered: %v", err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		next := d.Look("orders", "/src", fmt.Sprint("e", i+1))
		if err := d.Mark(ctx, "orders", "/src", fmt.Sprint("e", i)); err != nil {
			b.Fatal(err)
		}
		if _, err := next.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
