package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"time"
)

// Options configure Run. Start from DefaultOptions. It is a plain value;
// Run only reads it.
type Options struct {
	// Duration is how long each scenario is measured. Default 5s. A load
	// generator that has measured no request by then (a delivery
	// throughput scenario, no delivery) runs on until it has; the
	// scenario's Elapsed and Note say so.
	Duration time.Duration
	// Warmup is how long each scenario runs before it is measured.
	// Default 1s.
	Warmup time.Duration
	// Concurrency is the number of concurrent single-event requests of the
	// high-concurrency HTTP scenario and of the trivial handler. Default 64.
	Concurrency int
	// BatchConcurrency is the number of concurrent batch requests.
	// Default 4.
	BatchConcurrency int
	// BatchSize is the number of events per batch request. Default 100.
	BatchSize int
	// Window bounds the baseline's outstanding acks. Default 1024.
	Window int
	// E2ERate is the end-to-end scenario's events per second. Default
	// 1000.
	E2ERate int
	// Backlog is the number of events stored before each delivery
	// throughput scenario starts delivering; whenever fewer than half of
	// it are left undelivered, as many more are stored. 0, the default,
	// sizes it to last twice the warm-up and measured duration at the aim
	// of 20,000 deliveries/s.
	Backlog int
	// Only selects the scenarios: "" or "all" for every one, "publish"
	// for the publish path's, "delivery" for the delivery path's,
	// "tracing" for the tracing comparison alone.
	Only string
	// TracingOverhead adds the tracing comparison to the scenarios Only
	// selects: HTTP single events at Concurrency, batches, and delivery at
	// max_in_flight 64, each run with no tracing, with tracing off and
	// with tracing on, TracingRounds times (see TracingRun). It sets
	// OpenTelemetry's global TracerProvider, once per process, to one of
	// the benchmark's that forwards to each mode's provider, and leaves it
	// forwarding to a no-op one, with a no-op global propagator. Run fails
	// when the spans show the sidecar did not follow it (when another
	// global TracerProvider was set first). Default false.
	TracingOverhead bool
	// TracingRounds is the number of rounds of the tracing comparison.
	// Default 3.
	TracingRounds int
	// Log receives the broker's and the ingress's logs; nil discards them.
	Log *slog.Logger
	// Progress, when not nil, gets a line as each scenario starts.
	Progress io.Writer
}

// DefaultOptions returns the defaults documented on Options.
func DefaultOptions() Options {
	return Options{
		Duration:         5 * time.Second,
		Warmup:           time.Second,
		Concurrency:      64,
		BatchConcurrency: 4,
		BatchSize:        100,
		Window:           1024,
		E2ERate:          1000,
		TracingRounds:    3,
	}
}

func (o Options) validate() error {
	switch {
	case o.Duration <= 0:
		return errors.New("bench: duration must be positive")
	case o.Warmup < 0:
		return errors.New("bench: warm-up must not be negative")
	case o.Concurrency < 1, o.BatchConcurrency < 1, o.Window < 1:
		return errors.New("bench: concurrency, batch concurrency and window must be at least 1")
	case o.BatchSize < 1:
		return errors.New("bench: batch size must be at least 1")
	case o.E2ERate < 1:
		return errors.New("bench: end-to-end rate must be at least 1 event/s")
	case o.Backlog < 0:
		return errors.New("bench: backlog must not be negative")
	case !slices.Contains([]string{"", onlyAll, onlyPublish, onlyDelivery, onlyTracing}, o.Only):
		return fmt.Errorf("bench: only %q is not %q, %q, %q or %q", o.Only, onlyAll, onlyPublish, onlyDelivery, onlyTracing)
	case o.tracing() && o.TracingRounds < 1:
		return errors.New("bench: tracing rounds must be at least 1")
	}
	return nil
}

// The values of Options.Only.
const (
	onlyAll      = "all"
	onlyPublish  = "publish"
	onlyDelivery = "delivery"
	onlyTracing  = "tracing"
)

// tracing reports whether o selects the tracing comparison.
func (o Options) tracing() bool {
	return o.TracingOverhead || o.Only == onlyTracing
}

// backlog is the delivery throughput scenarios' backlog: o.Backlog, or
// twice what the aim needs for the warm-up and the measured duration.
func (o Options) backlog() int {
	if o.Backlog > 0 {
		return o.Backlog
	}
	return int(2 * aimDeliveries * (o.Warmup + o.Duration).Seconds())
}

func (o Options) log() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Log
}

// scenario is one measurement.
type scenario struct {
	key, name   string
	concurrency int    // requests (or acks, or deliveries) in flight at most
	perRequest  int    // events per request
	versus      string // the key of the scenario it is set against, if any
	measure     func(ctx context.Context, o Options, s scenario) (Result, error)
}

// measurement is what a publish scenario's run saw.
type measurement struct {
	samples []sample
	win     window
	stores  bool   // the scenario stores its events
	stored  uint64 // messages in the stream after the run
}

// summarized turns a publish scenario's measure into one that returns its
// Result.
func summarized(measure func(context.Context, Options, scenario) (measurement, error)) func(context.Context, Options, scenario) (Result, error) {
	return func(ctx context.Context, o Options, s scenario) (Result, error) {
		m, err := measure(ctx, o, s)
		if err != nil {
			return Result{}, err
		}
		return summarize(s, m), nil
	}
}

// Run runs every scenario o selects in turn, each on fresh servers, then
// the tracing comparison when o selects it, and reports them.
// Failed requests and deliveries do not make it fail: they are in the
// Report (see Report.Failed). It fails when a scenario cannot be set up or ctx ends.
// Each call uses the whole machine, so calls should not overlap, although
// they are safe to; calls with the tracing comparison share
// OpenTelemetry's global state, so theirs must not.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	rep := &Report{Machine: CurrentMachine(), Duration: o.Duration, Warmup: o.Warmup}
	for _, s := range o.scenarios() {
		res, err := o.runOne(ctx, s, s.name)
		if err != nil {
			return nil, fmt.Errorf("bench: %s: %w", s.key, err)
		}
		rep.Results = append(rep.Results, res)
	}
	if o.tracing() {
		runs, err := runTracing(ctx, o)
		if err != nil {
			return nil, err
		}
		rep.Tracing = runs
	}
	rep.Ratios = append(ratios(rep.Results, o), overheads(rep.Tracing)...)
	return rep, nil
}

// runOne measures s, announced as label, after a garbage collection.
func (o Options) runOne(ctx context.Context, s scenario, label string) (Result, error) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "bench: %s ...\n", label)
	}
	runtime.GC()
	res, err := s.measure(ctx, o, s)
	if err == nil {
		err = ctx.Err()
	}
	return res, err
}

// baselineKey is the baseline's Result.Key.
const baselineKey = "baseline"

// Scenario keys, as in Result.Key and the JSON summary.
func (o Options) keys() (baseline, single1, single, batch, trivial string) {
	return baselineKey, "http_single_c1",
		fmt.Sprintf("http_single_c%d", o.Concurrency),
		fmt.Sprintf("http_batch%d_c%d", o.BatchSize, o.BatchConcurrency),
		fmt.Sprintf("trivial_c%d", o.Concurrency)
}

// grpcKeys are the keys of the gRPC publish scenarios: single events at
// o.Concurrency and batches.
func (o Options) grpcKeys() (single, batch string) {
	return fmt.Sprintf("grpc_single_c%d", o.Concurrency),
		fmt.Sprintf("grpc_batch%d_c%d", o.BatchSize, o.BatchConcurrency)
}

// daprKeys are the keys of the Dapr API's publish scenarios: single
// publishes at o.Concurrency and bulk publishes.
func (o Options) daprKeys() (single, bulk string) {
	return fmt.Sprintf("dapr_single_c%d", o.Concurrency),
		fmt.Sprintf("dapr_bulk%d_c%d", o.BatchSize, o.BatchConcurrency)
}

// deliveryInFlight are the max_in_flight settings of the delivery
// throughput scenarios; the aim is for aimInFlight.
var deliveryInFlight = []int{1, 16, aimInFlight}

// deliveryKey is the key of the delivery throughput scenario at
// max_in_flight inFlight, streamKey the gRPC stream's, and e2eKey the
// end-to-end scenario's.
func deliveryKey(inFlight int) string { return fmt.Sprintf("delivery_mif%d", inFlight) }

func streamKey(inFlight int) string { return fmt.Sprintf("grpc_stream_mif%d", inFlight) }

func (o Options) e2eKey() string { return fmt.Sprintf("e2e_r%d", o.E2ERate) }

func (o Options) scenarios() []scenario {
	all := o.Only == "" || o.Only == onlyAll
	var out []scenario
	if all || o.Only == onlyPublish {
		out = append(out, o.publishScenarios()...)
	}
	if all || o.Only == onlyDelivery {
		out = append(out, o.deliveryScenarios()...)
	}
	return out
}

func (o Options) publishScenarios() []scenario {
	kBase, kSingle1, kSingle, kBatch, kTrivial := o.keys()
	kGRPCSingle, kGRPCBatch := o.grpcKeys()
	kDaprSingle, kDaprBulk := o.daprKeys()
	c, bc, bs := o.Concurrency, o.BatchConcurrency, o.BatchSize
	return []scenario{
		{key: kBase, name: fmt.Sprintf("baseline: JetStream async, window %d", o.Window), concurrency: o.Window, perRequest: 1,
			measure: summarized(measureDirect)},
		{key: kSingle1, name: "HTTP single event, c=1", concurrency: 1, perRequest: 1,
			measure: summarized(measureSidecar(singleRequest))},
		{key: kSingle, name: fmt.Sprintf("HTTP single event, c=%d", c), concurrency: c, perRequest: 1,
			measure: summarized(measureSidecar(singleRequest))},
		{key: kGRPCSingle, name: fmt.Sprintf("gRPC Publish single, c=%d", c), concurrency: c, perRequest: 1, versus: kSingle,
			measure: summarized(measureGRPC(PublishOf(eventData)))},
		{key: kBatch, name: fmt.Sprintf("HTTP batch of %d, c=%d", bs, bc), concurrency: bc, perRequest: bs,
			measure: summarized(measureSidecar(BatchOf(bs, eventData)))},
		{key: kGRPCBatch, name: fmt.Sprintf("gRPC PublishBatch of %d, c=%d", bs, bc), concurrency: bc, perRequest: bs, versus: kBatch,
			measure: summarized(measureGRPC(publishBatchOf(bs)))},
		{key: kDaprSingle, name: fmt.Sprintf("Dapr HTTP publish, c=%d", c), concurrency: c, perRequest: 1, versus: kSingle,
			measure: summarized(measureSidecarAt(daprPublishPath, daprRequest))},
		{key: kDaprBulk, name: fmt.Sprintf("Dapr bulk publish of %d, c=%d", bs, bc), concurrency: bc, perRequest: bs, versus: kBatch,
			measure: summarized(measureSidecarAt(daprBulkPath, daprBulkOf(bs, eventData)))},
		{key: kTrivial, name: fmt.Sprintf("trivial handler, c=%d", c), concurrency: c, perRequest: 1,
			measure: summarized(measureTrivial)},
	}
}

func (o Options) deliveryScenarios() []scenario {
	var out []scenario
	for _, n := range deliveryInFlight {
		out = append(out, scenario{key: deliveryKey(n), name: fmt.Sprintf("delivery of a backlog, max_in_flight %d", n),
			concurrency: n, perRequest: 1, measure: measureDelivery})
	}
	out = append(out, scenario{key: streamKey(aimInFlight), name: fmt.Sprintf("gRPC stream delivery, max_in_flight %d", aimInFlight),
		concurrency: aimInFlight, perRequest: 1, versus: deliveryKey(aimInFlight), measure: measureStreamDelivery})
	name := fmt.Sprintf("end to end: HTTP publish at %d events/s to delivery, max_in_flight %d", o.E2ERate, e2eInFlight)
	return append(out, scenario{key: o.e2eKey(), name: name, concurrency: e2eInFlight, perRequest: 1, measure: measureEndToEnd})
}

// measureDirect runs the baseline on a fresh node.
func measureDirect(ctx context.Context, o Options, _ scenario) (m measurement, err error) {
	n, err := openNode(ctx, o)
	if err != nil {
		return m, err
	}
	defer func() { err = errors.Join(err, n.Close()) }()
	d, err := newDirect(n.broker, o.Window, n.cfg.Broker.PublishTimeout)
	if err != nil {
		return m, err
	}
	m = d.measure(ctx, Load{Warmup: o.Warmup, Duration: o.Duration})
	m.stores = true
	m.stored, err = n.stored(ctx)
	return m, err
}

// measureSidecar returns the measurement of the sidecar's ingress on a
// fresh node with the requests build makes.
func measureSidecar(build RequestFunc) func(context.Context, Options, scenario) (measurement, error) {
	return measureSidecarAt(func(sc *sidecar) string { return sc.url }, build)
}

// measureSidecarAt is measureSidecar with the requests sent to the URL
// url gives of the sidecar (another API's path).
func measureSidecarAt(url func(*sidecar) string, build RequestFunc) func(context.Context, Options, scenario) (measurement, error) {
	return func(ctx context.Context, o Options, s scenario) (m measurement, err error) {
		sc, err := startSidecar(ctx, o)
		if err != nil {
			return m, err
		}
		defer func() { err = errors.Join(err, sc.Close()) }()
		m.samples, m.win = drive(ctx, o, s, url(sc), build)
		m.stores = true
		m.stored, err = sc.stored(ctx)
		return m, err
	}
}

// measureTrivial drives the trivial handler with single-event requests.
func measureTrivial(ctx context.Context, o Options, s scenario) (m measurement, err error) {
	t, err := startTrivial()
	if err != nil {
		return m, err
	}
	defer func() { err = errors.Join(err, t.Close()) }()
	m.samples, m.win = drive(ctx, o, s, t.url, singleRequest)
	return m, nil
}

// drive runs the load generator at s's concurrency against url with the
// requests build makes, over a client of its own.
func drive(ctx context.Context, o Options, s scenario, url string, build RequestFunc) ([]sample, window) {
	client := NewClient(s.concurrency)
	defer client.CloseIdleConnections()
	return Load{Concurrency: s.concurrency, Warmup: o.Warmup, Duration: o.Duration}.run(ctx, HTTPOp(client, url, build))
}
