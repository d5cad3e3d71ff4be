package apart

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/bench"
)

// The rows' fixed settings, as the issue measured them.
const (
	concurrency      = 64   // closed-loop workers of single events, direct consumer's workers
	batchSize        = 100  // events per batch
	batchConcurrency = 4    // concurrent batches
	asyncWindow      = 1024 // the async baseline's outstanding acks
	e2eSenders       = 64   // the end-to-end row's senders
	e2eInFlight      = 64   // the end-to-end row's max_in_flight
	// fastDeliveries and slowDeliveries bound the deliveries/s the
	// default backlog is sized for, at max_in_flight 64 (and for the
	// direct consumer) and at 1.
	fastDeliveries = 20000
	slowDeliveries = 5000
)

// The rows' keys.
const (
	keySync        = "nats_sync_c64"
	keyAsync       = "nats_async_w1024"
	keySyncStored  = "nats_sync_stored_c64"    // keySync's publisher, sending the message the sidecar stores
	keyAsyncStored = "nats_async_stored_w1024" // keyAsync's, likewise
	keyTrivial     = "trivial_c64"
	keyConsumer    = "direct_consumer_w64"
	keyConsumer1   = "direct_consumer_w1"
	keyHTTP        = "http_c64"
	keyBatch       = "http_batch100_c4"
	keyGRPC        = "grpc_c64"
	keyMIF64       = "delivery_mif64"
	keyMIF1        = "delivery_mif1"
	keyIdle        = "idle_rss_embedded"
	keyRSS         = "rss_http_c64"
)

// e2eKey is the end-to-end row's key.
func (o Options) e2eKey() string { return fmt.Sprintf("e2e_r%d", o.E2ERate) }

// row is one measurement of the report.
type row struct {
	key, name string
	versus    string // the key of the row it is set against; "" for none
	once      bool   // runs once, after the rounds
	group     string // onlyPublish or onlyDelivery; "" for a row that runs only with every row
	measure   func(ctx context.Context, r *rig) (Figures, error)
}

// rows are the rows o.Only selects, in the order run.
func (o Options) rows() []row {
	all := o.allRows()
	if o.Only == "" || o.Only == onlyAll {
		return all
	}
	return slices.DeleteFunc(all, func(r row) bool { return r.group != o.Only })
}

// allRows are every row in the order run: the baselines with the rows set
// against them, then the RSS rows.
func (o Options) allRows() []row {
	return []row{
		{key: keySync, group: onlyPublish, name: "direct nats.go sync publish + Nats-Msg-Id, c=64",
			measure: o.publishRow(natsTarget(loadSpec{Kind: loadNATSSync, Concurrency: concurrency}), o.Duration)},
		{key: keyAsync, group: onlyPublish, name: "direct nats.go async publish + Nats-Msg-Id, window 1024",
			measure: o.publishRow(natsTarget(loadSpec{Kind: loadNATSAsync, Concurrency: asyncWindow}), o.Duration)},
		{key: keySyncStored, group: onlyPublish, name: "direct nats.go sync publish of the message the sidecar stores, c=64",
			measure: o.publishRow(natsTarget(loadSpec{Kind: loadNATSSync, Concurrency: concurrency, Stored: true}), o.Duration)},
		{key: keyAsyncStored, group: onlyPublish, name: "direct nats.go async publish of the message the sidecar stores, window 1024",
			measure: o.publishRow(natsTarget(loadSpec{Kind: loadNATSAsync, Concurrency: asyncWindow, Stored: true}), o.Duration)},
		{key: keyTrivial, group: onlyPublish, name: "trivial Go HTTP handler, c=64 (the HTTP ceiling)",
			measure: o.publishRow(trivialTarget, o.Duration)},
		{key: keyHTTP, group: onlyPublish, name: "HTTP binary publish, c=64", versus: keyTrivial,
			measure: o.publishRow(sidecarTarget(loadSpec{Kind: loadHTTP, Concurrency: concurrency}), o.Duration)},
		{key: keyBatch, group: onlyPublish, name: "HTTP batch of 100, c=4", versus: keyAsync,
			measure: o.publishRow(sidecarTarget(loadSpec{Kind: loadBatch, Concurrency: batchConcurrency, BatchSize: batchSize}), o.Duration)},
		{key: keyGRPC, group: onlyPublish, name: "gRPC Publish, c=64", versus: keyHTTP,
			measure: o.publishRow(sidecarTarget(loadSpec{Kind: loadGRPC, Concurrency: concurrency}), o.Duration)},
		{key: keyConsumer, group: onlyDelivery, name: "direct nats.go pull consumer to the webhook, 64 workers (the delivery ceiling)",
			measure: o.consumerRow(concurrency, fastDeliveries)},
		{key: keyConsumer1, group: onlyDelivery, name: "direct nats.go pull consumer to the webhook, 1 worker (max_in_flight 1's ceiling)",
			measure: o.consumerRow(1, slowDeliveries)},
		{key: keyMIF64, group: onlyDelivery, name: "webhook delivery of a backlog, max_in_flight 64", versus: keyConsumer,
			measure: o.deliveryRow(64, fastDeliveries)},
		{key: keyMIF1, group: onlyDelivery, name: "webhook delivery of a backlog, max_in_flight 1", versus: keyConsumer1,
			measure: o.deliveryRow(1, slowDeliveries)},
		{key: o.e2eKey(), group: onlyDelivery, name: fmt.Sprintf("end to end at %d events/s, max_in_flight %d", o.E2ERate, e2eInFlight),
			measure: o.endToEndRow},
		{key: keyIdle, name: "idle, embedded broker", once: true, measure: o.idleRow},
		{key: keyRSS, name: fmt.Sprintf("HTTP binary publish, c=64, for %s", o.rssDuration()), once: true,
			measure: o.publishRow(sidecarTarget(loadSpec{Kind: loadHTTP, Concurrency: concurrency}), o.rssDuration())},
	}
}

// target starts what a publish row's load generator drives and returns
// the generator's settings and, when the row stores its events, the
// broker's URL ("" when it does not).
type target func(ctx context.Context, r *rig) (spec loadSpec, natsURL string, err error)

// natsTarget is nats-server with the sidecar's stream, driven directly by
// spec's nats.go publisher.
func natsTarget(spec loadSpec) target {
	return func(ctx context.Context, r *rig) (loadSpec, string, error) {
		url, err := r.startNATS(ctx)
		if err == nil {
			err = openStream(ctx, url, 0)
		}
		spec.Target = url
		return spec, url, err
	}
}

// trivialTarget is the trivial handler, in the sidecar's place, driven by
// the HTTP load generator.
func trivialTarget(ctx context.Context, r *rig) (loadSpec, string, error) {
	var h hello
	_, err := r.startChild(ctx, partSidecar, roleTrivial, struct{}{}, &h)
	return loadSpec{Kind: loadHTTP, Target: h.URL, Concurrency: concurrency}, "", err
}

// sidecarTarget is the sidecar on nats-server, driven by spec's load
// generator over HTTP or gRPC.
func sidecarTarget(spec loadSpec) target {
	return func(ctx context.Context, r *rig) (loadSpec, string, error) {
		url, err := r.startNATS(ctx)
		if err != nil {
			return spec, "", err
		}
		sc, err := r.startSidecar(ctx, sidecarConfig{natsURL: url})
		if err != nil {
			return spec, "", err
		}
		spec.Target = sc.publishURL()
		if spec.Kind == loadGRPC {
			spec.Target = sc.grpcAddr
		}
		return spec, url, nil
	}
}

// publishRow measures a load generator driving what t starts for d,
// after the warm-up, and checks that the stream holds every event it
// accepted.
func (o Options) publishRow(t target, d time.Duration) func(context.Context, *rig) (Figures, error) {
	return func(ctx context.Context, r *rig) (Figures, error) {
		spec, natsURL, err := t(ctx, r)
		if err != nil {
			return Figures{}, err
		}
		ld, err := r.startChild(ctx, partLoad, roleLoad, spec, nil)
		if err != nil {
			return Figures{}, err
		}
		res, r0, r1, err := r.drive(ctx, ld, o.frame(d))
		if err != nil {
			return Figures{}, err
		}
		f := r0.figures(r1, res.Events)
		f.EventsPerSec, f.P50, f.P99 = res.EventsPerSec, res.P50, res.P99
		f.Failed, f.FirstError, f.Note = res.Failed, res.FirstError, res.Note
		if natsURL == "" {
			return f, nil
		}
		stored, err := storedEvents(ctx, natsURL)
		f.Lost = max(res.Accepted-stored, 0)
		return f, err
	}
}

// drive runs ld over f and returns its result, with the readings at the
// start and at the end of the measured time.
func (r *rig) drive(ctx context.Context, ld *child, f timeFrame) (res bench.Result, r0, r1 reading, err error) {
	if err = ld.send(f); err != nil {
		return res, r0, r1, err
	}
	if r0, err = r.readAt(ctx, f.From); err != nil {
		return res, r0, r1, err
	}
	if r1, err = r.readAt(ctx, f.To); err != nil {
		return res, r0, r1, err
	}
	ctx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	err = ld.receive(ctx, &res)
	return res, r0, r1, err
}
