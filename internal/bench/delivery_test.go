package bench

import (
	"context"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/pause"
)

func TestHistogramQuantile(t *testing.T) {
	bounds := []float64{0.001, 0.002, 0.005}
	tests := []struct {
		name   string
		counts []uint64 // cumulative
		total  uint64
		q      float64
		want   time.Duration
	}{
		{"empty", []uint64{0, 0, 0}, 0, 0.5, 0},
		{"within the first bucket", []uint64{10, 10, 10}, 10, 0.5, 500 * time.Microsecond},
		{"within a middle bucket", []uint64{0, 10, 10}, 10, 0.5, 1500 * time.Microsecond},
		{"at a bound", []uint64{50, 100, 100}, 100, 0.5, time.Millisecond},
		{"beyond the last bound", []uint64{0, 0, 1}, 100, 0.99, 5 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Histogram{bounds: bounds, counts: tt.counts, total: tt.total}
			if got := h.Quantile(tt.q); got != tt.want {
				t.Errorf("quantile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func TestHistogramSince(t *testing.T) {
	earlier := Histogram{bounds: []float64{0.001, 0.002}, counts: []uint64{5, 8}, total: 9}
	later := Histogram{bounds: []float64{0.001, 0.002}, counts: []uint64{5, 18}, total: 19}
	d := later.Since(earlier)
	if d.total != 10 || d.counts[0] != 0 || d.counts[1] != 10 {
		t.Errorf("since = %+v, want counts [0 10], total 10", d)
	}
	if got := d.Quantile(0.5); got != 1500*time.Microsecond {
		t.Errorf("quantile(0.5) of the difference = %v, want 1.5ms", got)
	}
}

func TestRatioMet(t *testing.T) {
	tests := []struct {
		name string
		r    Ratio
		want bool
	}{
		{"no aim", Ratio{Value: 0.1}, true},
		{"at least, reached", Ratio{Value: 20000, Aim: 20000}, true},
		{"at least, missed", Ratio{Value: 19999, Aim: 20000}, false},
		{"below, reached", Ratio{Value: 9.9, Aim: 10, Below: true}, true},
		{"below, at the aim", Ratio{Value: 10, Aim: 10, Below: true}, false},
		{"below, negative", Ratio{Value: -3.5, Aim: 10, Below: true}, true},
		{"below, nothing measured", Ratio{Value: 0, Aim: 10, Below: true, Missing: true}, false},
		{"at least, nothing measured", Ratio{Value: 0, Aim: 0.5, Missing: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Met(); got != tt.want {
				t.Errorf("Met() = %v, want %v", got, tt.want)
			}
		})
	}
}

func BenchmarkDelivery(b *testing.B) {
	benchDelivery(b, DefaultOptions())
}

// benchDelivery delivers a backlog of b.N events at max_in_flight
// aimInFlight, on a fresh node.
func benchDelivery(b *testing.B, o Options) {
	n := benchNode(b, o)
	r, err := startReceiver(b.N)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := r.Close(); err != nil {
			b.Error(err)
		}
	})
	d, err := newDeliverer(b.Context(), n, r.url, aimInFlight, o.log())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if _, err := d.stop(context.Background()); err != nil {
			b.Error(err)
		}
	})
	f := &feeder{b: n.broker, data: eventData}
	if err := f.store(b.Context(), b.N); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	d.start(b.Context())
	awaitBacklog(b, d, r.arrivals, b.N)
}

// awaitBacklog waits, timed, until a has received n events, then stops d
// and fails if any delivery was retried, dead-lettered or received twice.
func awaitBacklog(b *testing.B, d *deliverer, a *arrivals, n int) {
	b.Helper()
	awaitDeliveries(b, a, int64(n))
	b.StopTimer()
	st, err := d.stop(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	if failed, first := failures(st, a); failed > 0 {
		b.Fatal(first)
	}
	reportEvents(b, n)
}

// awaitDeliveries polls a until it has received n events; it fails when
// none comes for deliveryStall.
func awaitDeliveries(b *testing.B, a *arrivals, n int64) {
	b.Helper()
	seen, progress := a.received(), time.Now()
	for seen < n {
		if time.Since(progress) > deliveryStall {
			b.Fatalf("%d of %d events delivered, none for %s", seen, n, deliveryStall)
		}
		if !pause.For(b.Context(), time.Millisecond) {
			b.Fatal(b.Context().Err())
		}
		if got := a.received(); got > seen {
			seen, progress = got, time.Now()
		}
	}
}
