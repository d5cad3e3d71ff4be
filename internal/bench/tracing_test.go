package bench

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
)

func TestTracingOverhead(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	o := DefaultOptions()
	o.Only = onlyTracing
	o.TracingRounds = 1
	o.Duration = 200 * time.Millisecond
	o.Warmup = 50 * time.Millisecond
	o.Backlog = 1000
	rep, err := Run(t.Context(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rep.Results) != 0 {
		t.Errorf("got %d results besides the tracing comparison, want none", len(rep.Results))
	}
	if got, want := len(rep.Tracing), 9; got != want {
		t.Fatalf("got %d tracing runs, want %d", got, want)
	}
	for _, run := range rep.Tracing {
		t.Run(run.Key+"/"+run.Mode, func(t *testing.T) {
			if len(run.Rounds) != 1 || run.EventsPerSec != run.Rounds[0].EventsPerSec {
				t.Fatalf("got %d rounds, events/s %.0f; want 1, the round's", len(run.Rounds), run.EventsPerSec)
			}
			checkRan(t, run.Rounds[0])
			checkSpans(t, run)
		})
	}
	var keys []string
	for _, q := range rep.Ratios {
		keys = append(keys, q.Key)
	}
	want := []string{
		"http_single_c64:tracing_off_overhead", "http_single_c64:tracing_on_overhead",
		"http_batch100_c4:tracing_off_overhead", "http_batch100_c4:tracing_on_overhead",
		"delivery_mif64:tracing_off_overhead", "delivery_mif64:tracing_on_overhead",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("ratios %v, want %v", keys, want)
	}
	checkOutputs(t, rep, len(want), "| HTTP batch of 100, c=4 | on: always sample", "overhead, tracing off")
	checkRestored(t)
}

// checkSpans checks the spans counted in run against its mode.
func checkSpans(t *testing.T, run TracingRun) {
	t.Helper()
	var ok bool
	switch run.Mode {
	case modeNone:
		ok = run.SpansStarted == 0 && run.SpansExported == 0
	case modeOff:
		ok = run.SpansStarted > 0 && run.SpansExported == 0
	case modeOn:
		ok = run.SpansStarted > 0 && run.SpansExported > 0
	}
	if !ok {
		t.Errorf("mode %s: %d spans with ids, %d exported", run.Mode, run.SpansStarted, run.SpansExported)
	}
}

// checkRestored checks that the global tracing set-up is a no-op again.
func checkRestored(t *testing.T) {
	t.Helper()
	_, span := otel.Tracer("probe").Start(context.Background(), "probe")
	defer span.End()
	if span.SpanContext().IsValid() || span.IsRecording() {
		t.Errorf("after Run, a span has context %v, recording %v; want no-op", span.SpanContext(), span.IsRecording())
	}
	if f := otel.GetTextMapPropagator().Fields(); len(f) != 0 {
		t.Errorf("after Run, the propagator uses fields %v, want none", f)
	}
}

func TestTracingScenarios(t *testing.T) {
	tests := []struct {
		name string
		opts func(*Options)
		want []string
	}{
		{"defaults", func(*Options) {}, []string{"http_single_c64", "http_batch100_c4", "delivery_mif64"}},
		{"concurrency 1", func(o *Options) { o.Concurrency = 1 }, []string{"http_single_c1", "http_batch100_c4", "delivery_mif64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOptions()
			tt.opts(&o)
			var got []string
			for _, s := range o.tracingScenarios() {
				got = append(got, s.key)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("tracing scenarios %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	tests := []struct {
		round int
		want  []int
	}{
		{0, []int{0, 1, 2}},
		{1, []int{1, 2, 0}},
		{2, []int{2, 0, 1}},
		{3, []int{0, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(strings.Repeat("I", tt.round+1), func(t *testing.T) {
			if got := rotation(3, tt.round); !slices.Equal(got, tt.want) {
				t.Errorf("rotation(3, %d) = %v, want %v", tt.round, got, tt.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	rates := func(v ...float64) []Result {
		r := make([]Result, len(v))
		for i, x := range v {
			r[i].EventsPerSec = x
		}
		return r
	}
	tests := []struct {
		name   string
		rounds []Result
		want   float64
	}{
		{"one", rates(5), 5},
		{"odd, unsorted", rates(9, 1, 5), 5},
		{"even", rates(4, 1, 2, 3), 2.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := median(tt.rounds); got != tt.want {
				t.Errorf("median = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOverheads(t *testing.T) {
	run := func(mode string, rate float64) TracingRun {
		return TracingRun{Mode: mode, Key: "k", Name: "n", EventsPerSec: rate}
	}
	tests := []struct {
		name    string
		runs    []TracingRun
		want    []float64 // off, on
		met     []bool
		missing bool
	}{
		{"within the aims", []TracingRun{run(modeNone, 1000), run(modeOff, 990), run(modeOn, 950)}, []float64{1, 5}, []bool{true, true}, false},
		{"beyond the aims", []TracingRun{run(modeNone, 1000), run(modeOff, 970), run(modeOn, 850)}, []float64{3, 15}, []bool{false, false}, false},
		{"faster than no tracing", []TracingRun{run(modeNone, 1000), run(modeOff, 1010), run(modeOn, 1000)}, []float64{-1, 0}, []bool{true, true}, false},
		{"no tracing measured nothing", []TracingRun{run(modeNone, 0), run(modeOff, 10), run(modeOn, 10)}, []float64{0, 0}, []bool{false, false}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := overheads(tt.runs)
			if len(got) != 2 {
				t.Fatalf("got %d overheads, want 2: %+v", len(got), got)
			}
			for i, q := range got {
				if diff := q.Value - tt.want[i]; diff > 1e-9 || diff < -1e-9 || q.Met() != tt.met[i] || q.Missing != tt.missing {
					t.Errorf("%s = %v (met %v, missing %v), want %v (met %v, missing %v)",
						q.Key, q.Value, q.Met(), q.Missing, tt.want[i], tt.met[i], tt.missing)
				}
			}
		})
	}
}

// BenchmarkTracingOverhead runs the tracing comparison's scenarios in each
// tracing mode; compare the modes' events/s with benchstat.
func BenchmarkTracingOverhead(b *testing.B) {
	o := DefaultOptions()
	for _, m := range tracingModes {
		b.Run(m.key, func(b *testing.B) {
			b.Run("http_single", func(b *testing.B) {
				benchTraced(b, m, false, func(b *testing.B) { benchHTTP(b, o, o.Concurrency, 1, singleRequest) })
			})
			b.Run("http_batch", func(b *testing.B) {
				benchTraced(b, m, false, func(b *testing.B) { benchHTTP(b, o, o.BatchConcurrency, o.BatchSize, BatchOf(o.BatchSize, eventData)) })
			})
			b.Run("delivery", func(b *testing.B) {
				benchTraced(b, m, true, func(b *testing.B) { benchDelivery(b, o) })
			})
		})
	}
}

// benchTraced runs bench with m installed; once bench's servers are
// closed, it restores the no-op set-up and checks the spans made.
func benchTraced(b *testing.B, m tracingMode, delivery bool, bench func(*testing.B)) {
	in := m.install()
	b.Cleanup(func() { // registered first, so it runs after bench's own
		if err := in.uninstall(context.Background()); err != nil {
			b.Error(err)
		}
		if err := in.check(m, delivery); err != nil {
			b.Error(err)
		}
	})
	bench(b)
}
