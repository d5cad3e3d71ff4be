package bench

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestScenariosRun(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // the nodes' stores go here, to check they are removed
	o := DefaultOptions()
	o.Duration = 200 * time.Millisecond
	o.Warmup = 50 * time.Millisecond
	o.Backlog = 1000 // small, so that it is topped up
	rep, err := Run(t.Context(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := len(rep.Results), 14; got != want {
		t.Fatalf("got %d results, want %d", got, want)
	}
	for _, res := range rep.Results {
		t.Run(res.Key, func(t *testing.T) { checkRan(t, res) })
	}
	if left, err := os.ReadDir(tmp); err != nil || len(left) != 0 {
		t.Errorf("temporary directory holds %v (%v), want nothing", left, err)
	}
	checkOutputs(t, rep, 6, "| baseline:", "| end to end:", "| gRPC Publish single, c=64 |",
		"| gRPC stream delivery, max_in_flight 64 | ", "| gRPC or Dapr scenario | events/s | against |")
	checkVersus(t, rep)
}

// TestWindowTooShort runs scenarios of each kind of load generator and
// app in a measured window too short for any request or delivery to fit:
// each still measures what it names, and says it went on for it.
func TestWindowTooShort(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	o := DefaultOptions()
	o.Warmup, o.Duration, o.Backlog = 0, time.Nanosecond, 1000
	_, _, _, kBatch, _ := o.keys()
	_, kGRPCBatch := o.grpcKeys()
	generators := map[string]int{ // the scenarios run, with their load generators
		baselineKey: 1, kBatch: o.BatchConcurrency, kGRPCBatch: o.BatchConcurrency,
		deliveryKey(1): 0, streamKey(aimInFlight): 0,
	}
	for _, s := range o.scenarios() {
		n, ok := generators[s.key]
		if !ok {
			continue
		}
		t.Run(s.key, func(t *testing.T) {
			res, err := o.runOne(t.Context(), s, s.name)
			if err != nil {
				t.Fatalf("measure: %v", err)
			}
			checkRan(t, res)
			if n > 0 && (res.Requests != int64(n) || !strings.Contains(res.Note, "load generators measured no request")) {
				t.Errorf("got %d requests, note %q; want one from each of the %d load generators, noted", res.Requests, res.Note, n)
			}
		})
	}
}

// checkRan checks that res's scenario ran and measured what it names,
// however slowly: requests (deliveries) with their events, the span they
// took and the rate over it, ordered latencies; that nothing failed; that
// the stream holds every accepted event; and, end to end, that every
// accepted event arrived. It asserts no rate or latency threshold.
func checkRan(t *testing.T, res Result) {
	t.Helper()
	if res.Note != "" {
		t.Logf("note: %s", res.Note)
	}
	if res.Failed != 0 || res.Lost() != 0 {
		t.Errorf("got %d failed and %d lost, want 0; first error: %s", res.Failed, res.Lost(), res.FirstError)
	}
	if res.Stores && res.Stored != uint64(res.Accepted) {
		t.Errorf("stream holds %d messages, want the %d accepted events", res.Stored, res.Accepted)
	}
	if res.Requests == 0 || res.Events != res.Requests*int64(res.EventsPerRequest) {
		t.Errorf("got %d requests and %d events, want some, %d events each; note: %q",
			res.Requests, res.Events, res.EventsPerRequest, res.Note)
	}
	if res.Elapsed <= 0 || res.EventsPerSec != float64(res.Events)/res.Elapsed.Seconds() {
		t.Errorf("got %.0f events/s over %v, want the %d events over the measured span", res.EventsPerSec, res.Elapsed, res.Events)
	}
	if res.P50 <= 0 || res.P99 < res.P50 {
		t.Errorf("got p50 %v, p99 %v; want both measured, in order", res.P50, res.P99)
	}
}

func TestOnly(t *testing.T) {
	tests := []struct {
		only string
		want []string
	}{
		{"publish", []string{"baseline", "http_single_c1", "http_single_c64", "grpc_single_c64", "http_batch100_c4", "grpc_batch100_c4",
			"dapr_single_c64", "dapr_bulk100_c4", "trivial_c64"}},
		{"delivery", []string{"delivery_mif1", "delivery_mif16", "delivery_mif64", "grpc_stream_mif64", "e2e_r1000"}},
		{"tracing", nil},
	}
	for _, tt := range tests {
		t.Run(tt.only, func(t *testing.T) {
			o := DefaultOptions()
			o.Only = tt.only
			var got []string
			for _, s := range o.scenarios() {
				got = append(got, s.key)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("scenarios %v, want %v", got, tt.want)
			}
		})
	}
}

// checkVersus checks that each gRPC and Dapr scenario has its ratio to
// its native HTTP counterpart, and the stream's to the baseline.
func checkVersus(t *testing.T, rep *Report) {
	t.Helper()
	have := map[string]bool{}
	for _, q := range rep.Ratios {
		have[q.Key] = true
	}
	for _, k := range []string{
		"grpc_single_c64/baseline", "grpc_single_c64/http_single_c64",
		"grpc_batch100_c4/baseline", "grpc_batch100_c4/http_batch100_c4",
		"grpc_stream_mif64/baseline", "grpc_stream_mif64/delivery_mif64",
		"dapr_single_c64/http_single_c64", "dapr_bulk100_c4/http_batch100_c4",
	} {
		if !have[k] {
			t.Errorf("no ratio %s", k)
		}
	}
}

// checkOutputs checks that the report renders with every one of rows,
// and that the JSON summary has every scenario, tracing run, ratio and
// aim.
func checkOutputs(t *testing.T, rep *Report, aims int, rows ...string) {
	t.Helper()
	var md, js bytes.Buffer
	err := rep.WriteMarkdown(&md)
	for _, row := range rows {
		if !bytes.Contains(md.Bytes(), []byte(row)) {
			err = errors.Join(err, fmt.Errorf("no %q", row))
		}
	}
	if err != nil {
		t.Errorf("WriteMarkdown: %v\n%s", err, md.String())
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatalf("WriteJSON: %v", err)
	}
	var s summary
	if err := json.Unmarshal(js.Bytes(), &s); err != nil {
		t.Fatalf("JSON summary: %v\n%s", err, js.String())
	}
	var ratios int
	for _, q := range rep.Ratios {
		if q.Unit == "" {
			ratios++
		}
	}
	if len(s.Scenarios) != len(rep.Results) || len(s.Tracing) != len(rep.Tracing) || len(s.Ratios) != ratios || len(s.Aims) != aims {
		t.Errorf("JSON summary has %d scenarios, %d tracing runs, %d ratios, %d aims; want %d, %d, %d, %d\n%s",
			len(s.Scenarios), len(s.Tracing), len(s.Ratios), len(s.Aims), len(rep.Results), len(rep.Tracing), ratios, aims, js.String())
	}
}

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		d := make([]time.Duration, len(n))
		for i, v := range n {
			d[i] = time.Duration(v) * time.Millisecond
		}
		return d
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"median of four", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of hundred", ms(seq(100)...), 0.99, 99 * time.Millisecond},
		{"p99 of hundred and one", ms(seq(101)...), 0.99, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.q); got != tt.want {
				t.Errorf("Percentile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

// seq is 1..n.
func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}

func BenchmarkDirectPublish(b *testing.B) {
	o := DefaultOptions()
	n := benchNode(b, o)
	d, err := newDirect(n.broker, o.Window, n.cfg.Broker.PublishTimeout)
	if err != nil {
		b.Fatal(err)
	}
	var failed int
	var first error
	b.ResetTimer()
	d.publish(b.Context(),
		func(seq uint64) bool { return seq < uint64(b.N) },
		func(_, _ time.Time, err error) {
			if err != nil {
				failed++
				first = cmp.Or(first, err)
			}
		})
	b.StopTimer()
	if failed > 0 {
		b.Fatalf("%d publishes failed; first: %v", failed, first)
	}
	reportEvents(b, b.N)
}

func BenchmarkHTTPPublishSingle(b *testing.B) {
	o := DefaultOptions()
	benchHTTP(b, o, o.Concurrency, 1, singleRequest)
}

func BenchmarkHTTPPublishBatch100(b *testing.B) {
	o := DefaultOptions()
	benchHTTP(b, o, o.BatchConcurrency, o.BatchSize, BatchOf(o.BatchSize, eventData))
}

// benchHTTP runs build's requests against a fresh sidecar from about
// concurrency goroutines (a multiple of GOMAXPROCS).
func benchHTTP(b *testing.B, o Options, concurrency, perRequest int, build RequestFunc) {
	sc, err := startSidecar(b.Context(), o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := sc.Close(); err != nil {
			b.Error(err)
		}
	})
	client := NewClient(parallelism(concurrency) * runtime.GOMAXPROCS(0))
	defer client.CloseIdleConnections()
	benchParallel(b, concurrency, perRequest, HTTPOp(client, sc.url, build))
}

// benchParallel calls do b.N times from about concurrency goroutines (a
// multiple of GOMAXPROCS), each worker with its own w and seq, and reports
// the events/s at perRequest events a call; it fails when any call did.
func benchParallel(b *testing.B, concurrency, perRequest int, do Op) {
	var workers, failed atomic.Int64
	var first sync.Once
	b.SetParallelism(parallelism(concurrency))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := int(workers.Add(1) - 1)
		for seq := uint64(0); pb.Next(); seq++ {
			if err := do(b.Context(), w, seq); err != nil {
				failed.Add(1)
				first.Do(func() { b.Error(err) })
			}
		}
	})
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
	reportEvents(b, b.N*perRequest)
}

// parallelism is the b.SetParallelism for about concurrency goroutines.
func parallelism(concurrency int) int {
	return max(1, concurrency/runtime.GOMAXPROCS(0))
}

func benchNode(b *testing.B, o Options) *node {
	b.Helper()
	n, err := openNode(b.Context(), o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := n.Close(); err != nil {
			b.Error(err)
		}
	})
	return n
}

func reportEvents(b *testing.B, events int) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
